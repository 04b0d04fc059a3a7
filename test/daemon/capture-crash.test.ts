/**
 * A capture asked with the CLI (`vnfs capture`, stored for the daemon, which runs it), its upload in
 * flight when `provisiond serve` is killed with -9: after the restart the task has ended failed with
 * the reason, and there is no VNFS and no staging folder. The node's agent is curl, as in
 * capture.test.ts; the upload is a real tar, sent half and held open.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { initCredential, ServeProcess, testConfig } from '../lib/daemon.js';
import { CLI } from '../lib/paths.js';
import { makeStatedir } from '../lib/statedir.js';

const run = promisify(execFile);
const NODE = '52:54:00:ca:00:41';

interface Task {
  status: string;
  result: string;
  nodes: Array<{ node: string; phase: string | null; messages: Array<{ message: string }> }>;
}

t.test('kill -9 during a capture upload: failed with the reason after the restart, nothing left', async (t) => {
  const statedir = makeStatedir(t, {}, { prefix: 'pvd-capk9-', layout: true });
  const configPath = join(statedir, 'provisiond.yaml');
  writeFileSync(configPath, testConfig(statedir));
  const cli = (...args: string[]) => run(process.execPath, [CLI, '--config', configPath, ...args], { timeout: 60_000 });
  const show = async (id: string): Promise<Task> => JSON.parse((await cli('task', 'show', id, '--json')).stdout) as Task;
  const first = await ServeProcess.start({ configPath });
  t.teardown(() => first.stop());
  const base = `http://127.0.0.1:${first.port}`;
  const cred = await initCredential(base, NODE);
  const node = JSON.parse((await cli('node', 'list', '--json')).stdout) as Array<{ name: string }>;
  t.equal(node.length, 1, 'the node registered at its init');

  const asked = await cli('vnfs', 'capture', node[0]!.name, 'crashy', '--exclude', '/var/cache/*');
  const id = /^task (\w+)$/m.exec(asked.stderr)![1]!;
  t.match(asked.stdout, /capture of \S+ as vnfs crashy asked: the daemon runs it/);
  // The agent's long-poll: the daemon takes the CLI's task over within seconds and offers it.
  const { stdout: script } = await run('curl', ['-sS', '-m', '40', '-H', `Authorization: Bearer ${cred}`, `${base}/nodes/${NODE}/actions?wait=30`]);
  const url = new URL(/^URL='([^']+)'$/m.exec(script)![1]!);
  const tarball = (await run('tar', ['-C', join(import.meta.dirname, '../../src'), '-cf', '-', '.'], { encoding: 'buffer', maxBuffer: 64 << 20 })).stdout;
  const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: 'PUT', headers: { Authorization: `Bearer ${cred}`, 'Content-Length': String(tarball.length) } });
  req.on('error', () => {});
  req.write(tarball.subarray(0, 128 * 1024));
  let seen: Task | null = null;
  for (let i = 0; i < 100 && !seen; i++) {
    const task = await show(id);
    if (task.nodes[0]!.messages.some((m) => /^upload: \d+ bytes received/.test(m.message))) seen = task;
    else await new Promise((r) => setTimeout(r, 200));
  }
  t.ok(seen, 'the upload is under way, acknowledged in the task');
  first.kill('SIGKILL');
  t.equal(await first.exited, null, 'killed by the signal');
  req.destroy();

  const second = await ServeProcess.start({ configPath });
  t.teardown(() => second.stop());
  let task = await show(id);
  for (let i = 0; i < 50 && task.status !== 'complete'; i++) {
    await new Promise((r) => setTimeout(r, 200));
    task = await show(id);
  }
  t.match(task, { status: 'complete', result: 'failure' });
  t.match(task.nodes[0]!.messages.at(-1)!.message, /the daemon restarted during the capture .*no vnfs was made; capture again/);
  t.notOk(existsSync(join(statedir, 'vnfs/crashy')), 'no VNFS');
  t.same(readdirSync(join(statedir, 'vnfs')).filter((f) => f.startsWith('.capture-')), [], 'no staging folder');
  await second.stop();
});
