import t from 'tap';
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { startDaemon, testConfig, text } from '../lib/daemon.js';
import { sleep } from '../lib/sleep.js';

const MAC = '52:54:00:40:00:01';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

t.test('nodescripts added, changed, made executable or deleted are used by the next request', async (t) => {
  const h = await startDaemon(t, '', { watch: true });
  const url = `${h.base}/nodescripts/init?nodeid=${MAC}`;
  t.notMatch((await text(url)).body, /added/);
  h.write('nodescripts/init/all/10-added', '#!/bin/sh\necho "echo added v1"\n', 0o755);
  t.match((await text(url)).body, /echo added v1/, 'a new script is used at once');
  h.write('nodescripts/init/all/10-added', '#!/bin/sh\necho "echo added v2"\n', 0o755);
  t.match((await text(url)).body, /echo added v2/, 'a changed script too');
  h.write('nodescripts/init/all/20-later', '#!/usr/bin/env python3\nprint("echo made executable")\n', 0o644);
  t.match((await text(url)).body, /# skipped: 20-later/, 'not executable: skipped');
  h.write('nodescripts/init/all/20-later', '#!/bin/sh\necho "echo made executable"\n', 0o755);
  t.match((await text(url)).body, /echo made executable/, 'made executable: runs');
  const { rmSync } = await import('node:fs');
  rmSync(`${h.statedir}/nodescripts/init/all/10-added`);
  t.notMatch((await text(url)).body, /added v2/, 'a deleted script is gone');
  await until('the watcher to log the change', () => h.log.lines.some((l) => /nodescripts changed/.test(l.msg)));
});

t.test('config: an invalid edit is refused and the old config stays; a valid one is applied and rebinds', async (t) => {
  const h = await startDaemon(t, '', { watch: true, http: '  maxScriptRequestsPerAddress: 3\n' });
  writeFileSync(h.configPath, testConfig(h.statedir, '', '  maxScriptRequestsPerAddress: lots\n'));
  await until('the refusal', () => h.log.lines.some((l) => /config refused/.test(l.msg)));
  const refusal = h.log.lines.find((l) => /config refused/.test(l.msg))!;
  t.match(refusal.msg, /http\.maxScriptRequestsPerAddress: expected number/, 'the reason names the key');
  t.equal(h.daemon.config.http.maxScriptRequestsPerAddress, 3, 'the old config stays in force');
  t.equal((await text(`${h.base}/healthz`)).status, 200, 'still serving on the old address');

  const port = await freePort();
  writeFileSync(h.configPath, testConfig(h.statedir, 'defaults:\n  nodeName: c###\n').replace('port: 0', `port: ${port}`));
  await until('the new port', async () => (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status, () => 0)) === 200);
  t.equal(h.daemon.config.defaults.nodeName, 'c###', 'the new config is in force');
  const res = await text(`http://127.0.0.1:${port}/nodescripts/init?nodeid=${MAC}`);
  t.equal(res.status, 200);
  t.equal((await h.daemon.registry.getNodeByNodeid(MAC))?.name, 'c000', 'new defaults apply to auto-registration');
  await until('the old port to close', async () => (await fetch(`${h.base}/healthz`).then(() => 1, () => 0)) === 0);
  t.pass('the old address is closed');
  t.equal(await h.daemon.reload('test'), null, 'reload() of the same valid file succeeds');
  writeFileSync(h.configPath, testConfig('/somewhere/else'));
  t.match(await h.daemon.reload('test'), /statedir, database and databasePasswordFile cannot change while running/);
});

t.test('the perceus service starts when enabled by a reload and speaks the Perceus protocol', async (t) => {
  const h = await startDaemon(t);
  h.write('nodescripts/init/all/10-hi', '#!/bin/sh\necho "echo hi $NODENAME"\n', 0o755);
  t.notOk(h.daemon.services.has('perceus'), 'off by default');
  writeFileSync(h.configPath, testConfig(h.statedir, 'perceus:\n  enabled: true\n  listen: 127.0.0.1\n  port: 0\n'));
  t.equal(await h.daemon.reload('test'), null);
  const svc = h.daemon.services.get('perceus')!;
  t.ok(svc, 'started by the reload');
  const port = Number(svc.address.split(':').pop());
  const { connect } = await import('node:net');
  const talk = (line: string) =>
    new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1');
      let out = '';
      s.on('data', (d) => (out += d));
      s.on('end', () => resolve(out));
      s.on('error', reject);
      s.write(`${line}\n`);
    });
  t.equal(await talk('ping abcdef0123456789'), '# PERCEUSD START\nabcdef0123456789\n', 'ping echoes the token as daemon_ping expects');
  const script = await talk(`init nodeid=${MAC.toLowerCase()} nodename=whatever`);
  // The init script carries the node's credential (its HTTP requests after init present it).
  t.match(script, /^# PERCEUSD START\n#!\/bin\/sh\nPROVISIOND_CREDENTIAL=[0-9a-f]{64}; [^\n]*\n# NODESCRIPT START\n[\s\S]*echo hi n0000\n[\s\S]*# NODESCRIPT END\n# PROVISIOND END\n$/);
  t.equal((await h.daemon.registry.getNodeByNodeid(MAC))?.state, 'init', 'the contact is recorded');
  t.match(await talk('garbage'), /bad request/);
  await talk('log node says hello');
  await sleep(100);
  t.ok(h.log.lines.some((l) => l.msg === 'perceus client log' && l.line === 'node says hello'), 'log lines reach the daemon log');
});

t.test('a reload that changes nodescripts settings does not cut a render in flight', async (t) => {
  const h = await startDaemon(t);
  h.write('nodescripts/init/all/10-slow', '#!/bin/sh\nsleep 2\necho "echo slow done"\n', 0o755);
  h.write('nodescripts/init/all/20-after', '#!/bin/sh\necho "echo after"\n', 0o755);
  const inflight = text(`${h.base}/nodescripts/init?nodeid=${MAC}`);
  await sleep(500);
  writeFileSync(h.configPath, testConfig(h.statedir, 'nodescripts:\n  timeout: 60\n'));
  t.equal(await h.daemon.reload('test'), null);
  t.equal(h.daemon.config.nodescripts.timeout, 60);
  const res = await inflight;
  t.match(res.body, /echo slow done\n[\s\S]*echo after\n[\s\S]*# NODESCRIPT END/, 'the render in flight finished on the old engine');
  const next = await text(`${h.base}/nodescripts/init?nodeid=${MAC}`);
  t.match(next.body, /echo after/, 'the next request is served by the new engine');
});
