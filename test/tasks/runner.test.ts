/**
 * The task runner against a real registry file and real power peers: the exec driver's fixture
 * scripts (real processes) and OpenIPMI's ipmi_sim as a BMC that refuses a wrong password. A
 * reload's boot is simulated by writing the timeline and check-ins the servers would write to the
 * same registry (the e2e harness does it with a QEMU node).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log/logger.js';
import { openRegistry } from '../../src/registry/open.js';
import type { TaskRecord, TimelineEvent } from '../../src/registry/types.js';
import { TaskRunner } from '../../src/tasks/index.js';
import { gate } from '../lib/gate.js';
import { haveIpmiSim, IPMI_USER, startIpmiSim, type IpmiSim } from '../power/lib/ipmi-sim.js';

const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURES = resolve(import.meta.dirname, '../power/fixtures');

if (gate(t, haveIpmiSim() ? null : 'ipmi_sim or ipmitool not installed (Debian packages openipmi, ipmitool)')) {
  const state = mkdtempSync(join(tmpdir(), 'pvd-tasks-'));
  const cfgFile = join(state, 'provisiond.yaml');
  writeFileSync(cfgFile, `statedir: ${state}\npower:\n  concurrency: 16\n  timeout: 20\n  retries: 0\n`);
  const config = parseConfig(readFileSync(cfgFile, 'utf8'), cfgFile);
  const sim: IpmiSim = await startIpmiSim(mkdirp(join(state, 'bmc')), 0);
  const registry = await openRegistry(config, silentLogger());
  t.teardown(async () => {
    await registry.close();
    await sim.stop();
    rmSync(state, { recursive: true, force: true });
  });

  const mac = (i: number) => `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`.toUpperCase();
  const name = (i: number) => `n${String(i).padStart(4, '0')}`;
  // A site's power scripts for nodes whose BMC cannot be reached, and for one that takes long.
  const broken = script('broken', { on: 'echo "bmc 10.9.9.9 does not answer" >&2; exit 5', cycle: 'echo "bmc 10.9.9.9 does not answer" >&2; exit 5', status: 'echo off', bootdev: 'exit 0' });
  const slow = script('slow', { on: 'sleep 60', status: 'echo off', bootdev: 'exit 0' });

  // n0001-n0015 on the exec fixture; n0016 behind the simulated BMC, with a wrong password.
  await registry.importNodes(Array.from({ length: 16 }, (_, i) => ({ name: name(i + 1), nodeid: mac(i + 1), group: 'rack1', vnfs: 'demo' })));
  await registry.updateGroup('rack1', { attrs: { 'power.driver': 'exec', 'power.dir': join(FIXTURES, 'exec') } });
  for (let i = 1; i <= 15; i++) await registry.updateNode(name(i), { attrs: { 'power.statefile': join(state, name(i)) } });
  await registry.updateNode(name(16), { attrs: { 'power.driver': 'ipmi', 'power.address': sim.address, 'power.user': IPMI_USER, 'power.password': 'wrong-Pa55', 'power.args': '-C 1', 'power.dir': null } });
  for (let i = 20; i < 30; i++) await registry.addNode({ name: `lab${i}`, nodeid: mac(i), vnfs: 'demo', attrs: { 'power.driver': 'exec', 'power.dir': join(FIXTURES, 'exec'), 'power.statefile': join(state, `lab${i}`) } });
  await registry.updateNode('lab21', { attrs: { 'power.dir': broken } });
  await registry.updateNode('lab22', { attrs: { 'power.dir': slow } });

  const runner = (tag: string) => new TaskRunner({ registry, config: () => config, log: silentLogger(), runnerId: `${hostname()}:${process.pid}:${tag}` });

  t.test('a 16-node power task with one bad BMC: partial_success, the bad node carries the driver error', async (t) => {
    const r = runner('power16');
    t.teardown(() => r.close());
    const { task, created } = await r.submit({ action: 'power', params: { nodes: ['n00[01-16]'], action: 'on' }, createdBy: 'vcl' });
    t.ok(created);
    t.equal(task.status, 'queued');
    t.equal(task.nodes.length, 16, 'one sub-result per node');
    t.equal(await registry.getTask(task.id).then((x) => x?.id), task.id, 'stored before submit resolved');
    const done = await r.wait(task.id, { timeoutMs: 60_000 });
    t.equal(done.status, 'complete');
    t.equal(done.result, 'partial_success');
    t.equal(done.nodes.filter((n) => n.result === 'success').length, 15);
    const bad = done.nodes.find((n) => n.node === 'n0016')!;
    t.equal(bad.result, 'failure');
    const last = bad.messages.at(-1)!;
    t.equal(last.error, true);
    t.match(last.message, /^ipmitool chassis power on \(127\.0\.0\.1:\d+\): .+/, "the driver's error");
    t.notOk(last.message.includes('wrong-Pa55'), 'without the password');
    t.equal(readFileSync(join(state, 'n0007'), 'utf8').trim(), 'on', 'the good nodes were powered on');
    t.ok(done.started! >= done.created && done.finished! >= done.started!, 'created, started, finished times');
    const events = await registry.listEvents(mac(7));
    t.match(events.at(-1), { source: 'power', stage: 'power on', ok: true }, 'recorded in the node timeline');
    t.same(await registry.getTask(task.id), done, 'what wait() returns is what is stored');
    const alone = await r.submit({ action: 'power', params: { nodes: ['n0016'], action: 'on' }, createdBy: 'vcl' });
    t.equal((await r.wait(alone.task.id, { timeoutMs: 60_000 })).result, 'failure', 'every node failed: failure');
  });

  t.test('a bad request is refused with the parameter named; nothing is stored', async (t) => {
    const r = runner('bad');
    t.teardown(() => r.close());
    const before = (await registry.listTasks({ limit: 1000 })).length;
    await t.rejects(r.submit({ action: 'power', params: { nodes: ['n0001'], action: 'of' }, createdBy: 'vcl' }), { name: 'UsageError', message: /params\.action "of": expected on, off/ });
    await t.rejects(r.submit({ action: 'power', params: { nodes: ['nope[1-2]'], action: 'on' }, createdBy: 'vcl' }), { name: 'UsageError', message: '"nope[1-2]" matches no node' });
    await t.rejects(r.submit({ action: 'reload', params: { nodes: ['lab20'], speed: 3 }, createdBy: 'vcl' }), { name: 'UsageError', message: /params\.speed: unknown parameter/ });
    await t.rejects(r.submit({ action: 'vnfs-image', params: { vnfs: 'none' }, createdBy: 'vcl' }), { name: 'UsageError', message: /params\.vnfs "none": no such vnfs/ });
    t.equal((await registry.listTasks({ limit: 1000 })).length, before);
    const byMac = await r.submit({ action: 'bootdev', params: { nodes: [mac(3).toLowerCase()], device: 'pxe' }, createdBy: 'vcl' });
    t.same(byMac.task.nodes.map((n) => n.node), ['n0003'], 'a MAC names its node');
    t.equal((await r.wait(byMac.task.id)).result, 'success');
    t.equal(readFileSync(join(state, 'n0003.boot'), 'utf8').trim(), 'pxe');
  });

  t.test('idempotency key: the same caller gets the same task, another caller a new one', async (t) => {
    const r = runner('idem');
    t.teardown(() => r.close());
    const req = { action: 'power' as const, params: { nodes: ['n0001'], action: 'off' }, idempotencyKey: 'retry-1' };
    const a = await r.submit({ ...req, createdBy: 'vcl' });
    const b = await r.submit({ ...req, createdBy: 'vcl' });
    t.equal(b.task.id, a.task.id);
    t.equal(b.created, false, 'nothing started twice');
    const c = await r.submit({ ...req, createdBy: 'opennebula' });
    t.not(c.task.id, a.task.id);
    t.equal(c.created, true);
    await r.wait(a.task.id);
    await r.wait(c.task.id);
  });

  t.test('reload: phases from the timeline in order, success when the node checks in ready', async (t) => {
    const r = runner('reload');
    t.teardown(() => r.close());
    const phases: string[] = [];
    r.on('change', (x: TaskRecord) => {
      const p = x.nodes[0]?.phase;
      if (p && phases.at(-1) !== p) phases.push(p);
    });
    const { task } = await r.submit({ action: 'reload', params: { nodes: ['lab20'], timeout: 30, interval: 0.05 }, createdBy: 'cli:root' });
    await until(() => fileIs(join(state, 'lab20'), 'on'));
    t.equal(readFileSync(join(state, 'lab20.boot'), 'utf8').trim(), 'pxe', 'boot device pxe first');
    // The previous boot's ready agent checks in once more while the power cycle takes effect.
    await event(mac(20), 'http', 'nodescript ready', 'requested');
    await registry.recordContact(mac(20), 'ready', '10.0.0.5');
    await new Promise((r) => setTimeout(r, 200));
    await boot(mac(20), 'demo');
    const done = await r.wait(task.id, { timeoutMs: 20_000 });
    t.equal(done.result, 'success');
    t.same(phases, ['power', 'dhcp', 'kernel', 'init', 'getfile', 'ready'], 'phases arrive in order (the previous boot\'s check-in is not this one\'s ready)');
    t.match(done.nodes[0]!.messages.at(-1), { message: 'ready on demo', error: false });
    t.ok(done.nodes[0]!.progressAt! >= done.started!, 'progressAt follows the steps');
  });

  t.test('reload: a power driver that fails ends failure with its message; a failed boot step too', async (t) => {
    const r = runner('reload-fail');
    t.teardown(() => r.close());
    const { task } = await r.submit({ action: 'reload', params: { nodes: ['lab21'], timeout: 30, interval: 0.05 }, createdBy: 'vcl' });
    const done = await r.wait(task.id, { timeoutMs: 20_000 });
    t.equal(done.result, 'failure');
    t.match(done.nodes[0]!.messages.at(-1), { error: true, message: /broken\/on lab21: exit 5: bmc 10\.9\.9\.9 does not answer/ });
    const two = await r.submit({ action: 'reload', params: { nodes: ['lab23'], timeout: 30, interval: 0.05 }, createdBy: 'vcl' });
    await until(() => fileIs(join(state, 'lab23'), 'on'));
    await event(mac(23), 'dhcp', 'ack', 'bound 10.0.0.23');
    await event(mac(23), 'node', 'failed', 'getfile vnfs/demo/image.cpio.gz', false);
    const failed = await r.wait(two.task.id, { timeoutMs: 20_000 });
    t.equal(failed.result, 'failure');
    t.equal(failed.nodes[0]!.phase, 'dhcp', 'the phase it reached');
    t.match(failed.nodes[0]!.messages.at(-1), { error: true, message: 'failed: getfile vnfs/demo/image.cpio.gz' });
    const silent = await r.submit({ action: 'reload', params: { nodes: ['lab24'], timeout: 1, interval: 0.05 }, createdBy: 'vcl' });
    const timedOut = await r.wait(silent.task.id, { timeoutMs: 20_000 });
    t.match(timedOut.nodes[0]!.messages.at(-1), { error: true, message: 'timed out after 1s (last: no sign of life)' });
    // A node that comes up on another VNFS than its own is not the reload done.
    const other = await r.submit({ action: 'reload', params: { nodes: ['lab27'], timeout: 30, interval: 0.05 }, createdBy: 'vcl' });
    await until(() => fileIs(join(state, 'lab27'), 'on'));
    await boot(mac(27), 'rescue');
    const wrong = await r.wait(other.task.id, { timeoutMs: 20_000 });
    t.equal(wrong.result, 'failure');
    t.equal(wrong.nodes[0]!.messages.at(-1)!.message, 'came up ready on vnfs rescue, assigned demo');
  });

  t.test('restart: a closed runner leaves its tasks; another takes over, waits on, ends the mid-call ones', async (t) => {
    const a = runner('a');
    const waiting = await a.submit({ action: 'reload', params: { nodes: ['lab25'], timeout: 60, interval: 0.05 }, createdBy: 'vcl' });
    const midCall = await a.submit({ action: 'power', params: { nodes: ['lab22'], action: 'on' }, createdBy: 'vcl' });
    await until(async () => (await registry.getTask(waiting.task.id))?.nodes[0]?.messages.some((m) => /^powered on to boot pxe/.test(m.message)) ?? false);
    await until(async () => (await registry.getTask(midCall.task.id))?.nodes[0]?.messages.some((m) => m.message === 'power on') ?? false);
    await a.close();
    t.equal((await registry.getTask(waiting.task.id))?.status, 'running', 'left running in the registry');
    const b = runner('b');
    t.teardown(() => b.close());
    await b.resume();
    const ended = await b.wait(midCall.task.id, { timeoutMs: 5000 });
    t.equal(ended.status, 'terminated');
    t.match(ended.nodes[0]!.messages.at(-1), { error: true, message: /^the daemon restarted during the power: .*power call happened is unknown/ });
    t.equal((await registry.getTask(waiting.task.id))?.runner, b.runnerId, 'the waiting reload is taken over');
    await boot(mac(25), 'demo');
    const done = await b.wait(waiting.task.id, { timeoutMs: 20_000 });
    t.equal(done.status, 'complete');
    t.equal(done.result, 'success', 'the reload completes when the node checks in');
  });

  t.test('restart: the runner process is killed (SIGKILL); a runner resuming takes the reload over', async (t) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', childScript(cfgFile)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise((r) => child.on('exit', r));
    await until(() => /powered (\S+)/.test(out), 30_000);
    const id = /powered (\S+)/.exec(out)![1]!;
    child.kill('SIGKILL');
    await exited;
    const b = runner('after-kill');
    t.teardown(() => b.close());
    t.equal((await registry.getTask(id))?.status, 'running', 'the killed runner left it running');
    await b.resume();
    await boot(mac(26), 'demo');
    const done = await b.wait(id, { timeoutMs: 20_000 });
    t.equal(done.result, 'success');
    t.match(done.messages.map((m) => m.message), [/^started by /, /^taken over by .*after-kill: its runner .*:\d+ is gone$/]);
  });

  t.test('cancel from another runner: the running one sees it in the registry, aborts the call, ends terminated', async (t) => {
    const a = runner('cancel-a');
    const b = runner('cancel-b');
    t.teardown(async () => {
      await a.close();
      await b.close();
    });
    const { task } = await a.submit({ action: 'power', params: { nodes: ['lab22', 'n0002'], action: 'on' }, createdBy: 'vcl' });
    await until(async () => (await registry.getTask(task.id))?.nodes.every((n) => n.messages.length > 0) ?? false);
    const t0 = Date.now();
    const asked = await b.cancel(task.id, 'alice');
    t.equal(asked.status, 'terminating');
    const done = await a.wait(task.id, { timeoutMs: 10_000 });
    t.ok(Date.now() - t0 < 5000, 'the 60 s call was aborted');
    t.equal(done.status, 'terminated');
    t.same(done.cancelRequested?.by, 'alice');
    const slowNode = done.nodes.find((n) => n.node === 'lab22')!;
    t.equal(slowNode.status, 'terminated');
    t.match(slowNode.messages.at(-1)!.message, /^cancelled by alice/);
    t.equal(done.nodes.find((n) => n.node === 'n0002')!.result, 'success', 'a node done before keeps its result');
    await t.rejects(b.cancel('no-such-task', 'alice'), { name: 'NodeNotFoundError' });
  });

  // ---- helpers ----

  function mkdirp(dir: string): string {
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  function script(dirName: string, verbs: Record<string, string>): string {
    const dir = mkdirp(join(state, dirName));
    for (const [verb, body] of Object.entries(verbs)) {
      writeFileSync(join(dir, verb), `#!/bin/sh\n${body}\n`);
      chmodSync(join(dir, verb), 0o755);
    }
    return dir;
  }

  function fileIs(file: string, text: string): boolean {
    return existsSync(file) && readFileSync(file, 'utf8').trim() === text;
  }

  async function event(nodeid: string, source: TimelineEvent['source'], stage: string, msg: string | null = null, ok = true): Promise<void> {
    await registry.addEvent({ time: Date.now(), nodeid, source, stage, msg, ok });
    await new Promise((r) => setTimeout(r, 30));
  }

  /** What the servers and the node record as it boots, down to the ready check-in. */
  async function boot(nodeid: string, vnfs: string): Promise<void> {
    await event(nodeid, 'dhcp', 'ack', 'bound 10.0.0.5 for 3600 s boot undionly.kpxe');
    await event(nodeid, 'tftp', 'tftp undionly.kpxe', 'sent 70 KiB');
    await event(nodeid, 'http', 'ipxe-script', 'boot stage-1');
    await event(nodeid, 'http', 'http vmlinuz', 'sent 11 MiB');
    await event(nodeid, 'node', 'dhcp', 'eth0 10.0.0.5/24');
    await event(nodeid, 'http', 'nodescript init', 'requested');
    await registry.recordContact(nodeid, 'init', '10.0.0.5');
    await event(nodeid, 'node', 'got-script', '4096 bytes');
    await event(nodeid, 'node', 'getfile', `vnfs/${vnfs}/image.cpio.gz`);
    await event(nodeid, 'http', 'http image.cpio.gz', 'sent 80 MiB');
    await event(nodeid, 'http', 'nodescript ready', 'requested');
    await registry.recordContact(nodeid, 'ready', '10.0.0.5');
    await registry.flush();
  }

  async function until(cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error('timed out waiting for a condition');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A runner in another process (the built dist/, as the CLI runs): submits a reload, says when powered, then sleeps. */
  function childScript(cfg: string): string {
    return `
      const { loadConfig } = await import(${JSON.stringify(join(ROOT, 'dist/config/load.js'))});
      const { silentLogger } = await import(${JSON.stringify(join(ROOT, 'dist/log/logger.js'))});
      const { openRegistry } = await import(${JSON.stringify(join(ROOT, 'dist/registry/open.js'))});
      const { TaskRunner } = await import(${JSON.stringify(join(ROOT, 'dist/tasks/index.js'))});
      const config = loadConfig(${JSON.stringify(cfg)});
      const registry = await openRegistry(config, silentLogger());
      const runner = new TaskRunner({ registry, config: () => config, log: silentLogger() });
      const { task } = await runner.submit({ action: 'reload', params: { nodes: ['lab26'], timeout: 60, interval: 0.05 }, createdBy: 'cli:child' });
      runner.on('change', (x) => { if (x.nodes[0].messages.some((m) => /^powered on to boot pxe/.test(m.message))) process.stdout.write('powered ' + x.id + '\\n'); });
      setInterval(() => {}, 1000);
    `;
  }
}
