/**
 * `provisiond node ...` in-process against a temporary statedir: what the admin types, what is
 * printed, and the database before and after.
 */
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliEnv } from './node-harness.js';

const MAC1 = '52:54:00:00:00:01';
const MAC2 = '52:54:00:00:00:02';

t.test('node add: with a name, with the next free name, refusing duplicates', async (t) => {
  const env = cliEnv(t);
  t.match(await env.run(['node', 'add', '52-54-00-00-00-01']), { code: 0, out: `added n0000 ${MAC1}\n` });
  t.match(await env.run(['node', 'add', MAC2.toLowerCase(), 'gpu01', '--group', 'gpu', '--ipaddr', '10.0.0.50']), { code: 0, out: `added gpu01 ${MAC2}\n` });
  t.match(await env.run(['node', 'add', '52:54:00:00:00:03']), { out: /added n0001/ });
  const dup = await env.run(['node', 'add', MAC1, 'other']);
  t.equal(dup.code, 1);
  t.equal(dup.err, `provisiond: hardware address ${MAC1} is already node n0000\n`, 'one line naming the other node');
  const bad = await env.run(['node', 'add', 'zz:zz', 'x']);
  t.match(bad, { code: 1, err: /^provisiond: invalid hardware address "zz:zz"/ });
  t.equal(bad.err.split('\n').length, 2, 'one line');
  t.match(await env.run(['node', 'add', '52:54:00:00:00:04', 'x/y']), { code: 1, err: /invalid node name "x\/y"/ });
  const reg = env.registry();
  t.match(await reg.getNode('gpu01'), { nodeid: MAC2, group: 'gpu', ipaddr: '10.0.0.50' });
  t.equal((await reg.listNodes()).length, 3, 'nothing added by the refused commands');
});

t.test('node list: lines when piped, a table on a terminal, JSON, patterns, ages', async (t) => {
  const env = cliEnv(t, 'node: { timeout: 600 }\n');
  const reg = env.registry();
  for (let i = 1; i <= 12; i++) await reg.addNode({ name: `n${String(i).padStart(4, '0')}`, nodeid: `52:54:00:00:01:${String(i).padStart(2, '0')}`, group: i > 8 ? 'gpu' : 'compute' });
  const now = Date.now();
  await reg.recordContact('52:54:00:00:01:01', 'ready', '10.0.0.101', now - 12_000);
  await reg.recordContact('52:54:00:00:01:02', 'init', '10.0.0.102', now - 700_000);
  await reg.flush();
  const piped = await env.run(['node', 'list', 'n00[01-02]']);
  t.equal(piped.code, 0);
  t.same(piped.out.trimEnd().split('\n').map((l) => l.split('\t')), [
    ['n0001', '52:54:00:00:01:01', 'compute', '-', 'yes', 'ready', '10.0.0.101', '12s ago'],
    ['n0002', '52:54:00:00:01:02', 'compute', '-', 'yes', 'init', '10.0.0.102', 'timed out (12m ago)'],
  ]);
  const table = await env.run(['node', 'list', 'n001?'], { tty: true });
  const lines = table.out.trimEnd().split('\n');
  t.match(lines[0], /^NAME\s+NODEID\s+GROUP\s+VNFS\s+ENABLED\s+STATE\s+ADDRESS\s+LAST CONTACT$/, 'a header on a terminal');
  t.same(lines.slice(1).map((l) => l.split(/\s+/)[0]), ['n0010', 'n0011', 'n0012'], 'sorted as numbers');
  t.equal(lines[1]!.indexOf('52:54'), lines[0]!.indexOf('NODEID'), 'columns aligned');
  const json = JSON.parse((await env.run(['node', 'list', '--json', 'n0001'])).out);
  t.match(json, [{ name: 'n0001', nodeid: '52:54:00:00:01:01', state: 'ready', lastaddr: '10.0.0.101', timedOut: false, group: 'compute' }]);
  t.same((await env.run(['node', 'list', '-i', '52-54-00-00-01-0[1-3]'])).out.split('\n').filter(Boolean).map((l) => l.split('\t')[0]), ['n0001', 'n0002', 'n0003']);
  t.equal((await env.run(['node', 'list'])).out.trimEnd().split('\n').length, 12, 'no pattern: every node');
  const none = await env.run(['node', 'list', 'n00[01-02]', 'x*']);
  t.match(none, { code: 1, err: 'provisiond: no node matches "x*"\n' }, 'a pattern matching nothing is an error');
  t.match(await env.run(['node', 'list', 'n[3-1]']), { code: 1, err: /range 3-1 goes backwards/ });
});

t.test('node list --unknown shows machines seen but not registered', async (t) => {
  const env = cliEnv(t);
  const reg = env.registry();
  await reg.recordUnknown('52:54:00:aa:bb:cc', '10.0.0.177', 'dhcp');
  await reg.flush();
  const r = await env.run(['node', 'list', '--unknown']);
  t.match(r.out, /^52:54:00:AA:BB:CC\t10\.0\.0\.177\tdhcp\t\d+s ago\t\d+s ago\t1\n$/);
});

t.test('node show: every value with its source; passwords never printed', async (t) => {
  const env = cliEnv(t);
  const reg = env.registry();
  await reg.updateGroup('compute', { vnfs: 'rocky9', attrs: { 'power.driver': 'ipmi', 'power.password': 'groupsecret' } });
  await reg.addNode({ name: 'n0001', nodeid: MAC1, group: 'compute', debug: 2, attrs: { rack: '12', 'power.password': 'nodesecret' } });
  const r = await env.run(['node', 'show', 'n0001']);
  t.equal(r.code, 0);
  t.match(r.out, /^n0001\n/);
  t.match(r.out, /\n {2}vnfs\s+rocky9\s+\(group\)\n/);
  t.match(r.out, /\n {2}debug\s+2\s+\(node\)\n/);
  t.match(r.out, /\n {2}enabled\s+yes\s+\(default\)\n/);
  t.match(r.out, /\n {2}power\.driver\s+ipmi\s+\(group\)\n/);
  t.match(r.out, /\n {2}power\.password\s+\*\*\*\*\s+\(node\)\n/);
  t.match(r.out, /\n {2}rack\s+12\s+\(node\)\n/);
  const json = await env.run(['node', 'show', '--json', 'n0001']);
  t.match(JSON.parse(json.out), [{ vnfs: 'rocky9', sources: { vnfs: 'group', debug: 'node' }, attrs: { 'power.password': '****' } }]);
  for (const out of [r.out, json.out, (await env.run(['node', 'list', '--json'])).out]) t.notMatch(out, /secret/, 'no password anywhere');
});

t.test('node set / unset: fields, attributes, boot; the database after', async (t) => {
  const env = cliEnv(t);
  const reg = env.registry();
  for (let i = 1; i <= 16; i++) await reg.addNode({ name: `n${String(i).padStart(4, '0')}`, nodeid: `52:54:00:00:02:${String(i).padStart(2, '0')}` });
  mkdirSync(join(env.dir, 'vnfs', 'rocky9'), { recursive: true });
  t.match(await env.run(['node', 'set', 'vnfs', 'rocky9', 'n00[01-16]']), { code: 0, out: 'set vnfs on 16 nodes\n' });
  t.match(await env.run(['node', 'set', 'rack', '12', 'n000*']), { out: 'set rack on 9 nodes\n' });
  await env.run(['node', 'set', 'power.driver', 'ipmi', 'n0001']);
  await env.run(['node', 'set', 'boot', 'local', 'n0002']);
  await env.run(['node', 'set', 'enabled', 'no', 'n0003']);
  await env.run(['node', 'set', 'debug', '3', 'n0003']);
  await env.run(['node', 'set', 'ipaddr', '10.0.0.14', 'n0004']);
  await env.run(['node', 'set', 'group', 'gpu', 'n0016']);
  t.match(await reg.getNode('n0001'), { vnfs: 'rocky9', attrs: { rack: '12', 'power.driver': 'ipmi' } });
  t.match(await reg.getNode('n0002'), { boot: 'local' });
  t.match(await reg.getNode('n0003'), { enabled: false, debug: 3 });
  t.match(await reg.getNode('n0004'), { ipaddr: '10.0.0.14' });
  t.match(await reg.getNode('n0010'), { vnfs: 'rocky9', attrs: {} });
  t.match(await reg.getNode('n0016'), { group: 'gpu' });
  await env.run(['node', 'unset', 'rack', 'n000[1-2]']);
  await env.run(['node', 'unset', 'vnfs', 'n0001']);
  t.same((await reg.getNode('n0001'))?.attrs, { 'power.driver': 'ipmi' });
  t.equal((await reg.getNode('n0001'))?.vnfs, null, 'unset: inherits again');
  t.equal((await reg.getNode('n0003'))?.attrs.rack, '12');
  const refused: Array<[string[], RegExp]> = [
    [['node', 'set', 'vnfs', 'nosuch', 'n0001'], /no vnfs named "nosuch" .*--force/],
    [['node', 'set', 'enabled', 'maybe', 'n0001'], /invalid enabled "maybe": use yes or no/],
    [['node', 'set', 'boot', 'floppy', 'n0001'], /invalid boot "floppy"/],
    [['node', 'set', 'ipaddr', '10.0.0.99', 'n000[5-6]'], /a fixed ipaddr belongs to one node, but 2 nodes match/],
    [['node', 'set', 'ipaddr', '10.0.0.14', 'n0005'], /already the fixed address of node n0004/],
    [['node', 'set', 'name', 'x', 'n0005'], /name cannot be set: use `provisiond node rename/],
    [['node', 'set', 'bad key', 'x', 'n0005'], /invalid attribute name "bad key"/],
    [['node', 'set', 'rack', '1', 'n9999'], /no node matches "n9999"/],
  ];
  for (const [args, re] of refused) {
    const r = await env.run(args);
    t.equal(r.code, 1, args.join(' '));
    t.match(r.err, re);
  }
  t.match(await env.run(['node', 'set', 'vnfs', 'nosuch', 'n0005', '--force']), { code: 0 });
  t.equal((await reg.getNode('n0005'))?.vnfs, 'nosuch');
});

t.test('node delete asks unless -y; rename and replace keep the node', async (t) => {
  const env = cliEnv(t);
  const reg = env.registry();
  await reg.addNode({ name: 'n0001', nodeid: MAC1, attrs: { rack: '3' } });
  await reg.addNode({ name: 'n0002', nodeid: MAC2 });
  const asked = await env.run(['node', 'delete', 'n*']);
  t.match(asked, { code: 1, err: 'provisiond: not deleting 2 nodes (n0001, n0002) without confirmation: add -y\n' });
  t.equal((await reg.listNodes()).length, 2, 'nothing deleted');
  t.match(await env.run(['node', 'delete', '-y', 'n0002']), { code: 0, out: 'deleted 1 node (n0002)\n' });
  t.equal(await reg.getNode('n0002'), null);
  t.match(await env.run(['node', 'rename', 'n0001', 'c001']), { code: 0, out: 'renamed n0001 to c001\n' });
  t.match(await env.run(['node', 'replace', 'c001', '52-54-00-00-00-99']), { code: 0, out: `c001: hardware address ${MAC1} replaced by 52:54:00:00:00:99\n` });
  t.match(await reg.getNode('c001'), { nodeid: '52:54:00:00:00:99', attrs: { rack: '3' } });
  t.match(await env.run(['node', 'rename', 'nope', 'x']), { code: 1, err: 'provisiond: no node named "nope"\n' });
});

t.test('node status and node summary', async (t) => {
  const env = cliEnv(t);
  const reg = env.registry();
  for (let i = 1; i <= 4; i++) await reg.addNode({ name: `n000${i}`, nodeid: `52:54:00:00:03:0${i}`, group: i === 4 ? 'gpu' : 'compute', enabled: i !== 3 });
  await reg.recordContact('52:54:00:00:03:01', 'ready', '10.0.0.1');
  await reg.recordContact('52:54:00:00:03:02', 'ready', '10.0.0.2');
  await reg.recordContact('52:54:00:00:03:04', 'init', '10.0.0.4');
  await reg.flush();
  const status = await env.run(['node', 'status', 'n0001'], { tty: true });
  t.match(status.out, /^NAME\s+STATE\s+LAST CONTACT\s+ADDRESS\s+VNFS\s+ENABLED\s+BOOT/);
  t.match(status.out, /\nn0001\s+ready\s+\d+s ago\s+10\.0\.0\.1\s+-\s+yes\s+pxe\b/);
  t.match(JSON.parse((await env.run(['node', 'status', '--json'])).out)[2], { name: 'n0003', state: '-', enabled: 'no' });
  const summary = (await env.run(['node', 'summary'])).out.trimEnd().split('\n').map((l) => l.split('\t'));
  t.same(summary, [
    ['compute', '3', '1', '0', 'ready 2, never seen 1'],
    ['gpu', '1', '0', '0', 'init 1'],
    ['total', '4', '1', '0', 'ready 2, init 1, never seen 1'],
  ]);
});

t.test('every node and group command has --help', async (t) => {
  const env = cliEnv(t);
  const verbs = {
    node: ['add', 'list', 'show', 'set', 'unset', 'delete', 'rename', 'replace', 'status', 'summary', 'import'],
    group: ['list', 'show', 'set', 'unset', 'delete', 'nodelist'],
  };
  for (const [noun, list] of Object.entries(verbs)) {
    t.match(await env.run([noun, '--help']), { code: 0, out: new RegExp(`Usage: provisiond ${noun}`) });
    for (const verb of list) {
      const r = await env.run([noun, verb, '--help']);
      t.equal(r.code, 0, `${noun} ${verb} --help`);
      t.match(r.out, new RegExp(`^Usage: provisiond ${noun} ${verb}`));
    }
  }
});

t.test('a corrupted database is one clear line, not a stack trace', async (t) => {
  const env = cliEnv(t);
  mkdirSync(join(env.dir, 'var'));
  writeFileSync(env.db, Buffer.alloc(4096, 0x41));
  const r = await env.run(['node', 'list']);
  t.equal(r.code, 1);
  t.match(r.err, /^provisiond: opening: registry database .*provisiond\.db is corrupted or not an SQLite database/);
  t.equal(r.err.split('\n').length, 2, 'one line');
});
