/**
 * Nodes by state and by verdict for /metrics (src/daemon/metrics/nodes.ts) on the real SQLite
 * registry with 10,000 nodes: the counts, the bounded labels (a state a node made up is `other`),
 * a scan that lets other work run while it counts, and one scan shared by scrapes within 5 s.
 */
import t from 'tap';
import { parseConfig } from '../../src/config/load.js';
import { cachedNodeCounts, countNodes, reasonLabel } from '../../src/daemon/metrics/nodes.js';
import { silentLogger } from '../../src/log/logger.js';
import { SqliteRegistry } from '../../src/registry/sqlite/registry.js';
import { makeStatedir, writeIn } from '../lib/statedir.js';

const statedir = makeStatedir(t, {}, { prefix: 'pvd-metrics-nodes-', layout: true });
writeIn(statedir, 'nodescripts/maintenance/all/00-x', '#!/bin/sh\n', 0o755);
const config = parseConfig(`statedir: ${statedir}\nnode: { timeout: 600 }\n`, 'test.yaml', statedir);
const registry = SqliteRegistry.open({ path: ':memory:', logger: silentLogger() });
t.teardown(() => registry.close());

const now = Date.now();
const mac = (i: number) => `52:54:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`.toUpperCase();
await registry.importNodes(Array.from({ length: 10_000 }, (_, i) => ({ name: `n${String(i).padStart(5, '0')}`, nodeid: mac(i), vnfs: i % 10 === 9 ? null : 'demo' })));
// States as nodes report them: 6,000 ready (1,000 of them silent for an hour), 1,000 init, 100
// maintenance (a state with a nodescripts folder), 50 made up by the node, the rest never seen.
for (let i = 0; i < 7150; i++) {
  const state = i < 6000 ? 'ready' : i < 7000 ? 'init' : i < 7100 ? 'maintenance' : `junk${i}`;
  await registry.recordContact(mac(i), state, '10.0.0.1', i < 1000 ? now - 3600_000 : now);
}
await registry.flush();

t.test('10,000 nodes counted by state and by verdict, with bounded labels', async (t) => {
  const { states, verdicts } = await countNodes(registry, config, now);
  t.same(Object.fromEntries(states), { ready: 6000, init: 1000, maintenance: 100, other: 50, none: 2850 });
  // Every tenth node has no VNFS: it is RELOAD for that before anything else.
  t.same(Object.fromEntries(verdicts), {
    'READY ': 4500,
    'RELOAD no-vnfs': 1000,
    'RELOAD timed-out': 900,
    'RELOAD not-ready': 1035,
    'RELOAD never-seen': 2565,
  });
});

t.test('the scan lets the event loop turn while it counts', async (t) => {
  let turns = 0;
  let stop = false;
  let last = performance.now();
  let longest = 0;
  const tick = () => {
    if (stop) return;
    turns++;
    const at = performance.now();
    longest = Math.max(longest, at - last);
    last = at;
    setImmediate(tick);
  };
  setImmediate(tick);
  const began = performance.now();
  await countNodes(registry, config, now);
  stop = true;
  t.ok(turns >= 10, `other work ran ${turns} times during a scan of 10,000 nodes`);
  // A figure, not a goal (the machine may be loaded): how long the event loop was held at most.
  t.comment(`scan of 10,000 nodes: ${(performance.now() - began).toFixed(0)} ms in all, the event loop held at most ${longest.toFixed(1)} ms at a time`);
});

t.test('scrapes within the cache period share one scan', async (t) => {
  let scans = 0;
  const counting = new Proxy(registry, {
    get(target, key, receiver) {
      if (key === 'listNodes') scans++;
      const v = Reflect.get(target, key, receiver) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const counts = cachedNodeCounts(counting, () => config, 60_000);
  const [a, b] = await Promise.all([counts(), counts()]);
  await counts();
  t.equal(scans, 1, 'one scan for three scrapes');
  t.equal(a, b);
  const fresh = cachedNodeCounts(counting, () => config, 0);
  await fresh();
  await fresh();
  t.equal(scans, 3, 'an expired cache scans again');
});

t.test('RELOAD reasons as labels carry nothing that varies', async (t) => {
  t.equal(reasonLabel('no contact for 2h (node.timeout 600s)'), 'timed-out');
  t.equal(reasonLabel('running vnfs centos, assigned demo'), 'other-vnfs');
  t.equal(reasonLabel('image changed since boot (booted 0123456789ab.., current ba9876543210..)'), 'image-changed');
  t.equal(reasonLabel('in state init, not ready'), 'not-ready');
  t.equal(reasonLabel(null), '');
});
