import t from 'tap';
import { spawn, execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeStatedir, testConfig, writeIn } from '../http/harness.js';
import { rmSync } from 'node:fs';

const run = promisify(execFile);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `provisiond serve` as a real process; resolves once it logged its HTTP address. */
async function serve(t: { teardown(fn: () => unknown): void }, configPath: string) {
  const child = spawn(process.execPath, ['bin/provisiond.js', 'serve', '--config', configPath, '--log-format', 'json'], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const lines: Array<Record<string, unknown>> = [];
  let buf = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const j = JSON.parse(line) as Record<string, unknown>;
          lines.push(j);
          const m = /^listening: http 127\.0\.0\.1:(\d+)$/.exec(String(j.msg));
          if (m) resolve(Number(m[1]));
        } catch {
          lines.push({ msg: line });
        }
      }
    });
    child.on('exit', (code) => reject(new Error(`provisiond exited ${code}: ${lines.map((l) => l.msg).join(' | ')}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, port, lines, exited };
}

t.test('SIGTERM during a large transfer: new connections refused, the transfer finishes, clean exit', async (t) => {
  const statedir = makeStatedir();
  t.teardown(() => rmSync(statedir, { recursive: true, force: true }));
  const data = randomBytes(48 * 1024 * 1024);
  writeIn(statedir, 'files/big.img', data);
  const configPath = join(statedir, 'provisiond.yaml');
  writeFileSync(configPath, testConfig(statedir));
  const d = await serve(t, configPath);
  const out = join(statedir, 'got.img');
  // A slow client: 16 MiB/s, about 3 s for the file.
  const download = run('curl', ['-sS', '--limit-rate', '16M', '-o', out, '-w', '%{http_code}', `http://127.0.0.1:${d.port}/files/big.img`]);
  await new Promise((r) => setTimeout(r, 800));
  const began = Date.now();
  d.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
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
  const statedir = makeStatedir();
  t.teardown(() => rmSync(statedir, { recursive: true, force: true }));
  const configPath = join(statedir, 'conf', 'provisiond.yaml');
  writeIn(statedir, 'conf/provisiond.yaml', testConfig(statedir));
  const d = await serve(t, configPath);
  d.child.kill('SIGHUP');
  await new Promise((r) => setTimeout(r, 1000));
  t.ok(d.lines.some((l) => l.msg === 'configuration reloaded' && l.why === 'SIGHUP'), 'reloaded on SIGHUP');
  writeFileSync(configPath, 'http:\n  port: -1\n');
  d.child.kill('SIGHUP');
  await new Promise((r) => setTimeout(r, 1000));
  t.ok(d.lines.some((l) => /config refused, the running one stays in force: .*http\.port/.test(String(l.msg))), 'refused with the reason');
  t.equal((await fetch(`http://127.0.0.1:${d.port}/healthz`)).status, 200, 'still serving');
  d.child.kill('SIGTERM');
  t.equal(await d.exited, 0);
});
