/**
 * `provisiond node import`: ethers and CSV lists, all or nothing, errors naming file and line, and
 * the real CLI killed with SIGKILL in the middle of importing 10,000 nodes.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cliEnv } from './node-harness.js';

const mac = (i: number) => `52:54:00:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

t.test('an ethers file (MAC name) is imported', async (t) => {
  const env = cliEnv(t);
  const file = join(env.dir, 'ethers');
  writeFileSync(file, `# the rack 1 nodes\n${mac(1)} n0001\n\n52-54-00-00-00-02   n0002\n${mac(3).toUpperCase()}\tn0003\n`);
  t.match(await env.run(['node', 'import', file]), { code: 0, out: `imported 3 nodes from ${file}\n` });
  const reg = env.registry();
  t.same((await reg.listNodes()).map((n) => [n.name, n.nodeid, n.group]).sort(), [
    ['n0001', '52:54:00:00:00:01', 'cluster'],
    ['n0002', '52:54:00:00:00:02', 'cluster'],
    ['n0003', '52:54:00:00:00:03', 'cluster'],
  ]);
});

t.test('a CSV with a header is imported; empty names get the next free names', async (t) => {
  const env = cliEnv(t);
  const reg = env.registry();
  await reg.addNode({ name: 'n0000', nodeid: mac(100) });
  const file = join(env.dir, 'nodes.csv');
  writeFileSync(file, [
    'nodeid,name,group,vnfs,ipaddr,attrs.rack',
    `${mac(1)},gpu01,gpu,rocky9,10.0.0.51,12`,
    `${mac(2)},,compute,,,`,
    `${mac(3)},"",compute,,,"1,2"`,
  ].join('\n'));
  t.match(await env.run(['node', 'import', file]), { code: 0, out: /imported 3 nodes/ });
  t.match(await reg.getNode('gpu01'), { group: 'gpu', vnfs: 'rocky9', ipaddr: '10.0.0.51', attrs: { rack: '12' } });
  t.match(await reg.getNode('n0001'), { nodeid: '52:54:00:00:00:02', group: 'compute', vnfs: null, ipaddr: null });
  t.match(await reg.getNode('n0002'), { nodeid: '52:54:00:00:00:03', attrs: { rack: '1,2' } });
});

t.test('a bad line names file and line, and nothing is imported', async (t) => {
  const env = cliEnv(t);
  const reg = env.registry();
  await reg.addNode({ name: 'old', nodeid: mac(9) });
  const cases: Array<[string, string, RegExp]> = [
    ['a', `${mac(1)} n0001\nzz:zz n0002\n`, /^provisiond: .*\/a:2: invalid hardware address "zz:zz"\n$/],
    ['b', `${mac(1)} n0001\n${mac(2)} n0002 extra\n`, /\/b:2: expected "MAC name", got 3 fields/],
    ['c', `${mac(1)} n0001\n# comment\n${mac(9)} n0003\n`, /\/c:3: hardware address 52:54:00:00:00:09 is already node old \(nothing imported\)/],
    ['d', `${mac(1)} n0001\n${mac(2)} n0001\n`, /\/d:2: node name n0001 is also entry 1 \(nothing imported\)/],
    ['e', `nodeid,name,colour\n${mac(1)},n1,red\n`, /\/e:1: unknown column "colour"/],
    ['f', `nodeid,name\n${mac(1)},n1,x\n`, /\/f:2: 3 fields, but the header names 2/],
    ['g', `nodeid,name,ipaddr\n${mac(1)},n1,10.0.0.300\n`, /\/g:2: invalid ipaddr "10\.0\.0\.300"/],
  ];
  for (const [name, text, re] of cases) {
    const file = join(env.dir, name);
    writeFileSync(file, text);
    const r = await env.run(['node', 'import', file]);
    t.equal(r.code, 1, `${name} refused`);
    t.match(r.err, re);
  }
  t.same((await reg.listNodes()).map((n) => n.name), ['old'], 'the database is as before');
  t.match(await env.run(['node', 'import', join(env.dir, 'missing')]), { code: 1, err: /reading .*missing: ENOENT/ });
});

t.test('kill -9 in the middle of importing 10,000 nodes leaves none or all of them', async (t) => {
  const env = cliEnv(t);
  const file = join(env.dir, 'ethers');
  const N = 10_000;
  writeFileSync(file, Array.from({ length: N }, (_, i) => `${mac(i)} n${String(i).padStart(5, '0')}`).join('\n') + '\n');
  const wal = `${env.db}-wal`;
  // Create the database first, so that the only thing the child writes is the import.
  await env.registry().close();
  const outcomes: string[] = [];
  let midWrite = 0;
  for (let attempt = 0; attempt < 4; attempt++) {
    t.notOk(existsSync(wal), 'no WAL left from before: its size measures this import only');
    const child = spawn(process.execPath, ['bin/provisiond.js', '--config', env.config, 'node', 'import', file], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
    t.teardown(() => child.kill('SIGKILL'));
    // Kill as soon as the import starts writing its transaction into the WAL (or at the deadline).
    const deadline = Date.now() + 30_000;
    let walSize = 0;
    while (Date.now() < deadline && child.exitCode === null) {
      walSize = existsSync(wal) ? statSync(wal).size : 0;
      // 32 bytes is the WAL header written on open; past it, the import's pages are being written.
      if (walSize > 32 && (attempt % 2 === 0 || walSize > 64 * 1024)) break;
      await sleep(1);
    }
    child.kill('SIGKILL');
    const how = await exited;
    const after = env.registry();
    const count = (await after.listNodes()).length;
    for (const n of await after.listNodes()) await after.deleteNode(n.name);
    await after.close(); // the last connection closing checkpoints and removes the WAL
    outcomes.push(`${how}:${count}`);
    t.ok(count === 0 || count === N, `attempt ${attempt + 1}: killed (${how}) with ${walSize} bytes in the WAL: ${count} nodes, none or all`);
    if (how === 'SIGKILL' && walSize > 32) midWrite++;
  }
  t.ok(midWrite >= 1, `at least one kill landed while the import was writing (${outcomes.join(' ')})`);
  // And left alone, the same command imports all of them.
  const reg = env.registry();
  for (const n of await reg.listNodes()) await reg.deleteNode(n.name);
  await reg.close();
  const child = spawn(process.execPath, ['bin/provisiond.js', '--config', env.config, 'node', 'import', file], { stdio: 'ignore' });
  t.equal(await new Promise((resolve) => child.on('exit', resolve)), 0, 'uninterrupted, it exits 0');
  t.equal((await env.registry().listNodes()).length, N, 'with all 10,000 nodes');
});
