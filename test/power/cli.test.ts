/**
 * The power CLI end to end: `provisiond power`, `node bootdev` and `reload` as an admin runs them,
 * against a registry in a temp statedir and the exec driver's fixture scripts (real processes).
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log/logger.js';
import { openRegistry } from '../../src/registry/open.js';

const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURES = resolve(import.meta.dirname, 'fixtures');
const state = mkdtempSync(join(tmpdir(), 'pvd-power-cli-'));
t.teardown(() => rmSync(state, { recursive: true, force: true }));
const cfgFile = join(state, 'provisiond.yaml');
writeFileSync(cfgFile, `statedir: ${state}\npower:\n  concurrency: 8\n  timeout: 10\n  retries: 0\n`);
const config = parseConfig(readFileSync(cfgFile, 'utf8'), cfgFile);
const logdir = join(state, 'runs');
mkdirSync(logdir);
writeFileSync(join(state, 'bmc-password'), 'Fil3-s3cret\n');

const mac = (i: number) => `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const name = (i: number) => `n${String(i).padStart(4, '0')}`;

// 64 nodes in group `compute` driven by the exec fixture; two in `bmc` driven by ipmi (dry-run only);
// two in `lab` with state files for reload.
const reg = await openRegistry(config, silentLogger());
await reg.importNodes(Array.from({ length: 64 }, (_, i) => ({ name: name(i + 1), nodeid: mac(i + 1), group: 'compute' })));
await reg.updateGroup('compute', { attrs: { 'power.driver': 'exec', 'power.dir': join(FIXTURES, 'exec-timed'), 'power.logdir': logdir, 'power.password': 'Gr0up-s3cret' } });
await reg.importNodes([
  { name: 'bmc01', nodeid: mac(201), group: 'bmc' },
  { name: 'bmc02', nodeid: mac(202), group: 'bmc' },
  { name: 'lab1', nodeid: mac(301), group: 'lab', vnfs: 'demo' },
  { name: 'lab2', nodeid: mac(302), group: 'lab', vnfs: 'demo' },
]);
await reg.updateGroup('bmc', { attrs: { 'power.driver': 'ipmi', 'power.user': 'admin', 'power.passwordFile': 'bmc-password' } });
await reg.updateNode('bmc01', { attrs: { 'power.address': '10.1.0.1' } });
await reg.updateNode('bmc02', { attrs: { 'power.address': '10.1.0.2:6230' } });
await reg.updateGroup('lab', { attrs: { 'power.driver': 'exec', 'power.dir': join(FIXTURES, 'exec') } });
await reg.updateNode('lab1', { attrs: { 'power.statefile': join(state, 'lab1') } });
await reg.updateNode('lab2', { attrs: { 'power.statefile': join(state, 'lab2') } });
await reg.close();

/** The CLI in the background: resolves with its exit code and output once it exits. */
function background(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/provisiond.js'), '-c', cfgFile, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  return new Promise((r) => child.on('exit', (code) => r({ code, out, err })));
}

/** Waits (at most 20 s) until the exec fixture's state file of `node` says on. */
async function poweredOn(node: string): Promise<void> {
  const end = Date.now() + 20000;
  while (!(existsSync(join(state, node)) && readFileSync(join(state, node), 'utf8').trim() === 'on')) {
    if (Date.now() > end) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/provisiond.js'), '-c', cfgFile, ...args], { encoding: 'utf8', timeout: 120000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('power on across 64 nodes with concurrency 8: never more than 8 at once, one line per node', async (t) => {
  const r = cli('power', 'on', 'n00[01-64]', '--concurrency', '8');
  const lines = r.stdout.trim().split('\n');
  t.equal(lines.length, 64, 'one line per node');
  t.match(lines[0], /^n0001 {2}on ok \(\d+\.\ds\)$/);
  t.match(r.stdout, /n0013 {2}FAILED: .*exec-timed\/on n0013: exit 4: outlet 13 does not answer/);
  t.equal(r.status, 1, 'exit status non-zero when a node failed');
  t.match(r.stderr, /power on: 1 of 64 nodes failed/);
  const events: Array<[bigint, number]> = [];
  for (const f of readdirSync(logdir)) {
    for (const l of readFileSync(join(logdir, f), 'utf8').trim().split('\n')) {
      const [ns, what] = l.split(' ');
      events.push([BigInt(ns!), what === 'start' ? 1 : -1]);
    }
  }
  t.equal(events.length, 128, 'every node ran once');
  events.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  let running = 0;
  let max = 0;
  for (const [, d] of events) max = Math.max(max, (running += d));
  t.ok(max <= 8, `at most 8 ran at once (saw ${max})`);
  t.ok(max >= 4, `and they did run in parallel (saw ${max})`);
});

t.test('an unknown pattern is an error; a node without a driver fails alone', async (t) => {
  const r = cli('power', 'status', 'nope[1-3]');
  t.equal(r.status, 1);
  t.match(r.stderr, /^provisiond: "nope\[1-3\]" matches no node\n$/);
});

t.test('--dry-run prints the commands with passwords as ****', async (t) => {
  const r = cli('power', 'cycle', 'bmc0[1-2]', 'n0001', '--dry-run');
  t.equal(r.status, 0);
  t.match(r.stdout, /^bmc01 {2}IPMI_PASSWORD=\*\*\*\* ipmitool -I lanplus -H 10\.1\.0\.1 -U admin -E chassis power cycle$/m);
  t.match(r.stdout, /^bmc02 {2}IPMI_PASSWORD=\*\*\*\* ipmitool -I lanplus -H 10\.1\.0\.2 -p 6230 -U admin -E chassis power cycle$/m);
  t.match(r.stdout, /^n0001 {2}POWER_PASSWORD=\*\*\*\* .*exec-timed\/cycle n0001 52:54:00:00:00:01$/m);
  for (const secret of ['Fil3-s3cret', 'Gr0up-s3cret']) t.notOk((r.stdout + r.stderr).includes(secret), 'no password shown');
  const shown = cli('power', 'on', 'bmc01', '--dry-run', '--show-passwords');
  t.match(shown.stdout, /^bmc01 {2}IPMI_PASSWORD=Fil3-s3cret ipmitool /m, 'unless asked');
  const b = cli('node', 'bootdev', 'pxe', 'bmc01', '--persistent', '--dry-run');
  t.match(b.stdout, /chassis bootdev pxe options=persistent$/m);
});

t.test('--verbose logs each command run, with the password masked', async (t) => {
  const r = cli('power', 'on', 'n0002', '-v');
  t.equal(r.status, 0);
  t.match(r.stderr, /POWER_PASSWORD=\*\*\*\*/);
  t.notOk(r.stderr.includes('Gr0up-s3cret'));
  const timeline = cli('node', 'timeline', 'n0002');
  t.match(timeline.stdout, /power on/, 'the action is in the node timeline');
});

t.test('reload --wait: bootdev pxe, power on, then waits for ready on the VNFS; a silent node times out', async (t) => {
  const run = background('reload', 'lab[1-2]', '--wait', '--wait-timeout', '8', '--interval', '0.2');
  // lab1 boots: once its power came on, it checks in as the HTTP service would record it.
  await poweredOn('lab1');
  const r2 = await openRegistry(config, silentLogger());
  // What the HTTP service records as the node asks for its init script, then checks in ready.
  await r2.recordContact(mac(301), 'init', '10.0.0.31');
  await r2.addEvent({ time: Date.now(), nodeid: mac(301), source: 'http', stage: 'nodescript init', msg: 'requested by lab1 from 10.0.0.31', ok: true });
  await r2.addEvent({ time: Date.now() + 1, nodeid: mac(301), source: 'node', stage: 'getfile demo.img 45%', msg: null, ok: true });
  await r2.flush();
  await new Promise((r) => setTimeout(r, 600));
  await r2.recordContact(mac(301), 'ready', '10.0.0.31');
  await r2.addEvent({ time: Date.now() + 2, nodeid: mac(301), source: 'http', stage: 'nodescript ready', msg: 'requested by lab1 from 10.0.0.31', ok: true });
  await r2.flush();
  await r2.close();
  const { code, out, err } = await run;
  t.equal(readFileSync(join(state, 'lab1.boot'), 'utf8').trim(), 'pxe', 'the boot device was set to pxe first');
  t.match(out, /^lab1 {2}powered on to boot pxe/m);
  t.match(out, /^lab1 {2}getfile demo\.img 45%/m, 'progress shows the boot stage from the timeline');
  t.match(out, /^lab1 {2}ready on demo \(\d+s\)$/m);
  t.match(out, /^lab2 {2}TIMED OUT \(last: no sign of life\)/m);
  t.equal(code, 1, 'non-zero: one node did not come back');
  t.match(err, /reload: 1 of 2 nodes did not come back ready/);
});

t.test('node status: READY/RELOAD verdict with the reason, and the power state where a driver is set', async (t) => {
  const r = cli('node', 'status', 'lab[1-2]', 'n0001', '--json');
  t.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<Record<string, string>>;
  const by = Object.fromEntries(rows.map((row) => [row.name, row]));
  t.equal(by.lab1?.verdict, 'READY', 'lab1 checked in ready on its vnfs after the reload');
  t.equal(by.lab1?.power, 'on');
  t.equal(by.lab2?.verdict, 'RELOAD (never seen)');
  t.equal(by.lab2?.power, 'on', 'lab2 was powered on by the reload, it just never booted');
  t.match(by.n0001?.power, /^unknown \(exec driver cannot status: no executable .*exec-timed\/status\)$/);
  const table = cli('node', 'status', 'lab1', 'lab2');
  t.match(table.stdout, /^lab1\s.*\sREADY\s+on\s*$/m, 'the plain output ends with the verdict and the power state');
  t.match(table.stdout, /^lab2\s.*\sRELOAD \(never seen\)\s+on\s*$/m);
});

t.test('node deploy --wait: the VNFS set first, then the reload, ready on the new VNFS', async (t) => {
  const missing = cli('node', 'deploy', 'nosuch', 'lab1');
  t.equal(missing.status, 1);
  t.match(missing.stderr, /node deploy: no VNFS "nosuch"/, 'a VNFS that does not exist is refused before anything is done');
  mkdirSync(join(state, 'vnfs/rescue'), { recursive: true });
  writeFileSync(join(state, 'vnfs/rescue/config'), '');
  const dry = cli('node', 'deploy', 'rescue', 'lab1', '--dry-run');
  t.match(dry.stdout, /^lab1 {2}vnfs set to rescue; then /m, '--dry-run says the VNFS comes first');

  rmSync(join(state, 'lab1'), { force: true });
  const run = background('node', 'deploy', 'rescue', 'lab1', '--wait', '--wait-timeout', '15', '--interval', '0.2');
  await poweredOn('lab1');
  const r2 = await openRegistry(config, silentLogger());
  t.equal((await r2.getNode('lab1'))?.vnfs, 'rescue', 'the VNFS was set before the node was powered');
  // The node boots the new VNFS: init, getfile of its image, ready.
  await r2.recordContact(mac(301), 'init', '10.0.0.31');
  await r2.addEvent({ time: Date.now(), nodeid: mac(301), source: 'http', stage: 'nodescript init', msg: 'requested by lab1 from 10.0.0.31', ok: true });
  await r2.addEvent({ time: Date.now() + 1, nodeid: mac(301), source: 'node', stage: 'getfile', msg: 'vnfs/rescue/image.cpio.gz', ok: true });
  await r2.flush();
  await new Promise((r) => setTimeout(r, 600));
  await r2.recordContact(mac(301), 'ready', '10.0.0.31');
  await r2.addEvent({ time: Date.now() + 2, nodeid: mac(301), source: 'http', stage: 'nodescript ready', msg: 'requested by lab1 from 10.0.0.31', ok: true });
  await r2.flush();
  await r2.close();
  const { code, out, err } = await run;
  t.equal(code, 0, `deployed (${err.trim()})`);
  t.match(out, /^lab1 {2}powered on to boot pxe/m);
  t.match(out, /^lab1 {2}ready on rescue \(\d+s\)$/m, 'ready on the deployed VNFS');
  const tasks = cli('task', 'list', '--json');
  t.match(tasks.stdout, /"action": ?"deploy"/, 'one deploy task, as `task list` shows');
});

t.test('node allocate and release: a free node of the group to each owner, none left, powered off on release', async (t) => {
  const a = cli('node', 'allocate', '--group', 'lab', '--vnfs', 'rescue', '--owner', 'alice', '--hostname', 'web01');
  t.equal(a.status, 0, a.stderr);
  const first = /^(lab\d) {2}allocated to alice$/m.exec(a.stdout)?.[1];
  t.ok(first, `allocated: ${a.stdout.trim()}`);
  t.match(a.stdout, new RegExp(`^${first} {2}(powered on|power cycled) to boot pxe`, 'm'), 'and deployed: its power step');
  const b = cli('node', 'allocate', '--group', 'lab', '--vnfs', 'rescue', '--owner', 'bob');
  t.equal(b.status, 0, b.stderr);
  const second = /^(lab\d) {2}allocated to bob$/m.exec(b.stdout)?.[1];
  t.not(second, first, 'another node for the second owner');
  const c = cli('node', 'allocate', '--group', 'lab', '--vnfs', 'rescue', '--owner', 'carol');
  t.equal(c.status, 1);
  t.match(c.stderr, /node allocate: no free node in group lab: 2 nodes, 2 allocated/, 'none left: a clear refusal');
  const shown = cli('node', 'show', first!);
  t.match(shown.stdout, /alloc\.hostname\s+web01/, 'the allocation is in the node\'s attributes');
  const list = cli('node', 'list', 'lab[1-2]');
  t.match(list.stdout, new RegExp(`^${first}\\t.*\\talice$`, 'm'), 'node list shows the owner');

  const r = cli('node', 'release', first!);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, new RegExp(`^${first} {2}released from alice \\(powered off\\)$`, 'm'));
  t.equal(readFileSync(join(state, first!), 'utf8').trim(), 'off', 'powered off');
  const k = cli('node', 'release', second!, '--keep');
  t.match(k.stdout, /released from bob \(left running\)/);
  const again = cli('node', 'release', first!);
  t.equal(again.status, 1);
  t.match(again.stderr, /not allocated: /);
  t.equal(cli('node', 'allocate', '--group', 'lab', '--vnfs', 'rescue', '--owner', 'dave').status, 0, 'a released node can be allocated again');
});

t.test("console: the node's terminal follows this terminal's size", async (t) => {
  const { default: pty } = await import('node-pty');
  const term = pty.spawn(process.execPath, [join(ROOT, 'bin/provisiond.js'), '-c', cfgFile, 'console', 'lab1'], { name: 'xterm', cols: 100, rows: 30, cwd: ROOT, env: process.env as Record<string, string> });
  let seen = '';
  term.onData((d) => (seen += d));
  const exited = new Promise<number>((r) => term.onExit(({ exitCode }) => r(exitCode)));
  const until = async (re: RegExp) => {
    const end = Date.now() + 20_000;
    while (!re.test(seen)) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${re} in ${JSON.stringify(seen.slice(-300))}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await until(/console of lab1 ready/);
  term.write('size\r');
  await until(/size: 30 100/);
  t.pass("the node's terminal has this one's size (30 rows, 100 columns)");
  term.resize(120, 40);
  await new Promise((r) => setTimeout(r, 300));
  term.write('size\r');
  await until(/size: 40 120/);
  t.pass('and follows it when it is resized');
  term.write('\r~.');
  t.equal(await exited, 0, '~. detaches');
});
