import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EscapeFilter, consoleLogPath } from '../../src/power/console.js';
import { fanOut } from '../../src/power/fanout.js';
import { createDriver } from '../../src/power/index.js';
import { maskAttrs, maskSecrets, powerSettings, splitArgs } from '../../src/power/settings.js';
import { UnsupportedVerbError } from '../../src/power/types.js';
import { formatVerdict, nodeVerdict, runningVnfsFromTimeline } from '../../src/power/verdict.js';
import { UsageError } from '../../src/util/errors.js';

t.test('verdict: READY only when ready, recent and on the assigned vnfs', async (t) => {
  const now = 1_000_000_000;
  const node = { name: 'n1', vnfs: 'demo', enabled: true, state: 'ready', lastcontact: now - 30_000 };
  const cases: Array<[Partial<Omit<typeof node, 'lastcontact'>> & { lastcontact?: number | null; runningVnfs?: string; power?: 'on' | 'off' }, string]> = [
    [{}, 'READY'],
    [{ power: 'on' }, 'READY [power on]'],
    [{ state: 'init' }, 'RELOAD (in state init, not ready)'],
    [{ lastcontact: null }, 'RELOAD (never seen)'],
    [{ lastcontact: now - 700_000 }, 'RELOAD (no contact for 12m (node.timeout 600s))'],
    [{ vnfs: '' }, 'RELOAD (no vnfs assigned)'],
    [{ enabled: false }, 'RELOAD (disabled)'],
    [{ runningVnfs: 'old' }, 'RELOAD (running vnfs old, assigned demo)'],
    [{ power: 'off' }, 'RELOAD (powered off) [power off]'],
  ];
  for (const [change, want] of cases) {
    const { runningVnfs, power, ...n } = change;
    t.equal(formatVerdict(nodeVerdict({ node: { ...node, ...n }, now, timeout: 600, runningVnfs, power })), want, want);
  }
});

t.test('verdict: an image rebuilt since the node booted is a RELOAD, with both hashes', async (t) => {
  const now = 1_000_000_000;
  const node = { name: 'n1', vnfs: 'demo', enabled: true, state: 'ready', lastcontact: now - 30_000 };
  const a = 'a'.repeat(64);
  const b = 'b'.repeat(64);
  t.equal(formatVerdict(nodeVerdict({ node, now, timeout: 600, bootImage: a, currentImage: a })), 'READY', 'the same image');
  t.equal(formatVerdict(nodeVerdict({ node, now, timeout: 600, bootImage: a, currentImage: b })), `RELOAD (image changed since boot (booted ${'a'.repeat(12)}.., current ${'b'.repeat(12)}..))`);
  t.equal(formatVerdict(nodeVerdict({ node, now, timeout: 600, bootImage: null, currentImage: b })), 'READY', 'not reported: not judged');
  t.equal(formatVerdict(nodeVerdict({ node, now, timeout: 600, bootImage: a, currentImage: null })), 'READY', 'no image on the master: not judged');
  t.equal(formatVerdict(nodeVerdict({ node: { ...node, state: 'init' }, now, timeout: 600, bootImage: a, currentImage: b })), 'RELOAD (in state init, not ready)', 'a node not ready says that first');
});

t.test('verdict: the running vnfs is the last image fetched, as the timeline shows', async (t) => {
  const ev = (source: string, stage: string, ok = true) => ({ source, stage, ok });
  t.equal(runningVnfsFromTimeline([ev('http', 'http vnfs/old/old.img'), ev('dhcp', 'ack'), ev('http', 'http files/vnfs/demo/demo.img.gz')]), 'demo');
  t.equal(runningVnfsFromTimeline([ev('http', 'http vnfs/old/old.img'), ev('http', 'http vnfs/demo/demo.img', false)]), 'old', 'a failed fetch is not a boot');
  t.equal(runningVnfsFromTimeline([ev('http', 'http boot/vmlinuz'), ev('node', 'ready')]), null);
});

t.test('escape filter: ~. at line start detaches, ~~ sends ~, ~ elsewhere passes', async (t) => {
  const f = new EscapeFilter();
  t.same(f.feed(Buffer.from('ls ~/x\r')), { forward: Buffer.from('ls ~/x\r'), detach: false });
  t.same(f.feed(Buffer.from('~~a\r')), { forward: Buffer.from('~a\r'), detach: false });
  t.same(f.feed(Buffer.from('~')), { forward: Buffer.alloc(0), detach: false }, 'a lone ~ is held');
  t.same(f.feed(Buffer.from('x')), { forward: Buffer.from('~x'), detach: false });
  t.same(f.feed(Buffer.from('\r~.')), { forward: Buffer.from('\r'), detach: true });
  t.same(new EscapeFilter().feed(Buffer.from('~.')), { forward: Buffer.alloc(0), detach: true }, 'at the very start too');
});

t.test('settings: node attributes, password file, args, masking', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-power-units-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'pw'), 'fromfile\n');
  const s = powerSettings('n1', { 'power.driver': 'ipmi', 'power.address': 'bmc1', 'power.passwordFile': 'pw', 'power.args': `-C 17 -L "OPERATOR X" 'a b'`, rack: '4' }, dir);
  t.equal(s.password, 'fromfile');
  t.same(s.args, ['-C', '17', '-L', 'OPERATOR X', 'a b']);
  t.same(s.raw, { driver: 'ipmi', address: 'bmc1', passwordFile: 'pw', args: `-C 17 -L "OPERATOR X" 'a b'` });
  t.throws(() => powerSettings('n1', { rack: '4' }, dir), /^n1: no power driver set/);
  t.throws(() => powerSettings('n1', { 'power.driver': 'ipmi', 'power.passwordFile': 'missing' }, dir), /reading power.passwordFile .*missing: ENOENT/);
  t.throws(() => splitArgs('"open'), /unterminated/);
  t.equal(maskSecrets('pw is hunter2, again hunter2', ['hunter2']), 'pw is ****, again ****');
  t.same(maskAttrs({ 'power.password': 'x', 'power.user': 'admin' }), { 'power.password': '****', 'power.user': 'admin' });
  t.equal(consoleLogPath('/srv', 'n0001'), '/srv/var/log/console/n0001.log');
  t.throws(() => consoleLogPath('/srv', '../etc'), UsageError);
});

t.test('drivers: unknown driver and missing settings are clear usage errors', async (t) => {
  const mk = (attrs: Record<string, string>) => createDriver({ name: 'n9', nodeid: '52:54:00:00:00:09', settings: powerSettings('n9', attrs, '/tmp') });
  t.throws(() => mk({ 'power.driver': 'amt' }), /^n9: unknown power.driver "amt" \(use ipmi, redfish, exec, qemu\)$/);
  t.throws(() => mk({ 'power.driver': 'ipmi' }), /^n9: the ipmi driver needs power.address/);
  t.throws(() => mk({ 'power.driver': 'exec' }), /^n9: the exec driver needs power.dir/);
  t.throws(() => mk({ 'power.driver': 'qemu' }), /^n9: the qemu driver needs power.address \(the VM's QMP unix socket path\)/);
  t.throws(() => mk({ 'power.driver': 'redfish', 'power.address': 'https://bmc', 'power.auth': 'kerberos' }), /power.auth must be session or basic/);
});

t.test('qemu console: power.console may be tcp:HOST:PORT', async (t) => {
  const server = createServer((s) => {
    s.write('serial says hi\r\n');
    s.on('data', (d) => s.write(`got ${d.toString()}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const d = createDriver({ name: 'n9', nodeid: '52:54:00:00:00:09', settings: powerSettings('n9', { 'power.driver': 'qemu', 'power.address': '/nonexistent.qmp', 'power.console': `tcp:127.0.0.1:${port}` }, '/tmp') });
  const session = await d.console();
  let seen = '';
  session.stream.on('data', (b: Buffer) => (seen += b.toString()));
  session.stream.write('x');
  const end = Date.now() + 5000;
  while (!seen.includes('got x') && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  t.match(seen, /serial says hi\r\ngot x/);
  t.match(session.via, /^qemu serial tcp:127\.0\.0\.1:\d+$/);
  await session.close();
});

t.test('fan-out: bounded, retried, cannot-verbs not retried, results in order', async (t) => {
  let running = 0;
  let max = 0;
  const tries = new Map<string, number>();
  const items = Array.from({ length: 40 }, (_, i) => ({ name: `n${i}` }));
  const seen: string[] = [];
  const results = await fanOut(
    items,
    async (item) => {
      running++;
      max = Math.max(max, running);
      tries.set(item.name, (tries.get(item.name) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      if (item.name === 'n3' && tries.get('n3') === 1) throw new Error('flaky');
      if (item.name === 'n5') throw new UnsupportedVerbError('qemu', 'bootdev');
      if (item.name === 'n7') throw new Error('always');
      return item.name.toUpperCase();
    },
    { concurrency: 6, timeout: 5, retries: 2, onResult: (r) => seen.push(r.name) },
  );
  t.equal(max, 6);
  t.same(results.map((r) => r.name), items.map((i) => i.name));
  t.match(results[3], { ok: true, value: 'N3', attempts: 2 });
  t.match(results[5], { ok: false, attempts: 1, error: 'qemu driver cannot bootdev' });
  t.match(results[7], { ok: false, attempts: 3, error: 'always' });
  t.equal(seen.length, 40);
  await t.rejects(fanOut(items, async () => 1, { concurrency: 0, timeout: 1, retries: 0 }), TypeError);
});
