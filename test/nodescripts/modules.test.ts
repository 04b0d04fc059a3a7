import t from 'tap';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { activateModule, deactivateModule, listModules } from '../../src/nodescript/modules.js';
import { createNodescriptEngine } from '../../src/nodescript/index.js';
import { silentLogger } from '../../src/log/logger.js';

const REPO = new URL('../../', import.meta.url).pathname;
const node = { state: 'init', nodename: 'n0001', nodeid: '52:54:00:00:00:01', group: 'compute', vnfs: 'demo', enabled: true, debug: 0, ipaddr: '' };

t.test('modules: activate links scripts the engine runs, deactivate removes them', async (t) => {
  const statedir = mkdtempSync(join(tmpdir(), 'pvd-mod-'));
  t.teardown(() => rmSync(statedir, { recursive: true, force: true }));
  cpSync(join(REPO, 'nodescripts'), join(statedir, 'nodescripts'), { recursive: true });
  const before = await listModules(statedir);
  t.same(before.map((m) => [m.name, m.active]), [['masterauth', []], ['sshkeys', []]], 'shipped modules, inactive by default');
  t.same(await activateModule(statedir, 'masterauth', 'init/group/compute'), ['nodescripts/init/group/compute/50-masterauth']);
  t.same(await activateModule(statedir, 'masterauth', 'init/group/compute'), ['nodescripts/init/group/compute/50-masterauth'], 'activating twice is harmless');
  t.same((await listModules(statedir)).find((m) => m.name === 'masterauth')!.active, ['init/group/compute']);
  const engine = createNodescriptEngine({ statedir, logger: silentLogger() });
  t.teardown(() => engine.close());
  const plan = await engine.plan('init', node);
  t.ok(plan.some((p) => p.name === '50-masterauth' && p.action === 'master' && p.dir === 'group/compute'), 'the engine runs the module script for the group');
  const other = await engine.plan('init', { ...node, group: 'other' });
  t.notOk(other.some((p) => p.name === '50-masterauth'), 'and not for other groups');
  const chunks: Buffer[] = [];
  for await (const c of engine.render(node, { statedir, vnfsMethod: 'http', vnfsMaster: '10.0.0.1:8080', vnfsPrefix: 'files' })) chunks.push(c as Buffer);
  const script = Buffer.concat(chunks).toString();
  t.match(script, /# 50-masterauth \(group\/compute\)/);
  t.equal(spawnSync('busybox', ['sh', '-n'], { input: script }).status, 0, 'the whole script parses');
  // a file of the admin's with the same name is never overwritten
  mkdirSync(join(statedir, 'nodescripts/init/node/n0002'), { recursive: true });
  writeFileSync(join(statedir, 'nodescripts/init/node/n0002/50-masterauth'), '#!/bin/sh\n');
  await t.rejects(activateModule(statedir, 'masterauth', 'init/node/n0002'), /exists already and is not this module's link/);
  await t.rejects(activateModule(statedir, 'nope', 'init/all'), /no module nope/);
  await t.rejects(activateModule(statedir, 'masterauth', 'ready/all'), /has no scripts for state ready/);
  await t.rejects(activateModule(statedir, 'masterauth', '../all'), /invalid target/);
  t.same(await deactivateModule(statedir, 'masterauth'), ['nodescripts/init/group/compute/50-masterauth']);
  t.notOk(existsSync(join(statedir, 'nodescripts/init/group/compute/50-masterauth')));
  t.ok(existsSync(join(statedir, 'nodescripts/init/node/n0002/50-masterauth')), "the admin's own file is left alone");
});

t.test('masterauth merges the master accounts into the new root, passwords locked', async (t) => {
  const dest = mkdtempSync(join(tmpdir(), 'pvd-mod-root-'));
  t.teardown(() => rmSync(dest, { recursive: true, force: true }));
  mkdirSync(join(dest, 'etc'));
  writeFileSync(join(dest, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nmessagebus:x:999:999::/:/bin/false\n');
  writeFileSync(join(dest, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n');
  const out = spawnSync(join(REPO, 'nodescripts/modules/masterauth/init/50-masterauth'), [], { env: { PATH: '/bin:/usr/bin', ATTR_MASTERAUTH_MINUID: '0' }, encoding: 'utf8' }).stdout;
  const r = spawnSync('busybox', ['sh', '-c', out], { env: { DESTDIR: dest, PATH: '/bin:/usr/bin' }, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const passwd = readFileSync(join(dest, 'etc/passwd'), 'utf8');
  const master = readFileSync('/etc/passwd', 'utf8');
  t.equal(passwd.split('\n').filter((l) => l.startsWith('root:')).length, 1, 'an account of the same name is replaced, not doubled');
  t.match(passwd, new RegExp(`^${master.split('\n')[0]!.split(':').slice(0, 4).join(':').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:`, 'm'), "the master's accounts are there");
  t.notMatch(readFileSync(join(dest, 'etc/shadow'), 'utf8'), /:\$[0-9a-z]+\$/, 'no password hash is copied');
});
