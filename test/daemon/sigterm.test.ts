import t from 'tap';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ServeProcess, testConfig } from '../lib/daemon.js';
import { sleep } from '../lib/sleep.js';
import { makeStatedir, writeIn, type Teardown } from '../lib/statedir.js';

const run = promisify(execFile);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `provisiond serve` as a real process, killed at teardown if the test did not stop it. */
async function serve(t: Teardown, configPath: string): Promise<ServeProcess> {
  const d = await ServeProcess.start({ configPath });
  t.teardown(() => d.kill('SIGKILL'));
  return d;
}

t.test('SIGTERM during a large transfer: new connections refused, the transfer finishes, clean exit', async (t) => {
  const statedir = makeStatedir(t, {}, { prefix: 'pvd-http-', layout: true });
  const data = randomBytes(48 * 1024 * 1024);
  writeIn(statedir, 'files/big.img', data);
  const configPath = join(statedir, 'provisiond.yaml');
  writeFileSync(configPath, testConfig(statedir));
  const d = await serve(t, configPath);
  const out = join(statedir, 'got.img');
  // A slow client: 16 MiB/s, about 3 s for the file.
  const download = run('curl', ['-sS', '--limit-rate', '16M', '-o', out, '-w', '%{http_code}', `http://127.0.0.1:${d.port}/files/big.img`]);
  await sleep(800);
  const began = Date.now();
  d.kill('SIGTERM');
  await sleep(300);
  const refused = await fetch(`http://127.0.0.1:${d.port}/healthz`).then(
    () => false,
    () => true,
  );
  t.ok(refused, 'no new connection is accepted once stopping');
  const { stdout } = await download;
  t.equal(stdout, '200');
  t.equal(sha256(readFileSync(out)), sha256(data), 'the transfer in flight finished whole');
  const code = await d.exited;
  t.equal(code, 0, 'the daemon exits 0');
  t.ok(Date.now() - began >= 1000, 'it waited for the transfer');
  t.ok(d.lines.some((l) => l.msg === 'stopped'), 'it logged its orderly stop');
  // The database was closed cleanly: the CLI opens it at once.
  const list = await run('./bin/provisiond.js', ['--config', configPath, 'node', 'list']);
  t.equal(list.stderr, '');
});

t.test('SIGHUP reloads the config; an invalid one is refused with the reason', async (t) => {
  const statedir = makeStatedir(t, {}, { prefix: 'pvd-http-', layout: true });
  const configPath = join(statedir, 'conf', 'provisiond.yaml');
  writeIn(statedir, 'conf/provisiond.yaml', testConfig(statedir));
  const d = await serve(t, configPath);
  d.kill('SIGHUP');
  await sleep(1000);
  t.ok(d.lines.some((l) => l.msg === 'configuration reloaded' && l.why === 'SIGHUP'), 'reloaded on SIGHUP');
  writeFileSync(configPath, 'http:\n  port: -1\n');
  d.kill('SIGHUP');
  await sleep(1000);
  t.ok(d.lines.some((l) => /config refused, the running one stays in force: .*http\.port/.test(String(l.msg))), 'refused with the reason');
  t.equal((await fetch(`http://127.0.0.1:${d.port}/healthz`)).status, 200, 'still serving');
  d.kill('SIGTERM');
  t.equal(await d.exited, 0);
});
