/**
 * Allocations through the admin API, as OpenNebula's deploy and VCL reservations use them: fifty
 * callers at once after a group of twenty free nodes get twenty different nodes and thirty clear
 * refusals; each allocation carries its deploy task; a retry with the same Idempotency-Key gets the
 * same node; a release powers the node off (or keeps it running) and frees it; node answers and
 * `node list` show the owner. (That a claim is committed before it is answered, across connections,
 * is the registry contract's claimNode test.)
 * The nodes are driven by the exec power driver's fixture (a state file per node).
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { CLI } from '../lib/paths.js';
import { startApiDaemon } from './lib/harness.js';

const FIXTURES = resolve(import.meta.dirname, '../power/fixtures/exec');
const run = promisify(execFile);
const mac = (i: number) => `52:54:00:a1:00:${i.toString(16).padStart(2, '0')}`;
const name = (i: number) => `p${String(i).padStart(2, '0')}`;

interface Allocation {
  node: string;
  owner: string;
  hostname: string | null;
  vnfs: string;
  task: string | null;
}

t.test('50 allocations at once from a group of 20: 20 nodes, 30 refusals; release; idempotency', async (t) => {
  const h = await startApiDaemon(t, '', { setup: (dir) => mkdirSync(join(dir, 'vnfs/rocky9/rootfs'), { recursive: true }) });
  const reg = h.daemon.registry;
  await reg.importNodes(Array.from({ length: 21 }, (_, i) => ({ name: name(i + 1), nodeid: mac(i + 1), group: 'pool', vnfs: 'demo' })));
  await reg.updateGroup('pool', { attrs: { 'power.driver': 'exec', 'power.dir': FIXTURES } });
  for (let i = 1; i <= 21; i++) await reg.updateNode(name(i), { attrs: { 'power.statefile': join(h.statedir, `power-${name(i)}`) } });
  // One that is not free: disabled.
  await reg.updateNode(name(21), { enabled: false });
  const waitTask = async (id: string) => {
    for (let i = 0; i < 200; i++) {
      const r = (await h.viewer.get(`/tasks/${id}`)).body as { status: string };
      if (r.status === 'complete' || r.status === 'terminated') return r;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`task ${id} did not end`);
  };

  const answers = await Promise.all(
    Array.from({ length: 50 }, (_, i) => h.operator.post('/allocations', { group: 'pool', vnfs: 'rocky9', owner: `vm-${i}`, timeout: 5 })),
  );
  const won = answers.filter((a) => a.status === 201).map((a) => a.body as Allocation);
  const refused = answers.filter((a) => a.status === 409);
  t.equal(won.length, 20, '20 allocations made');
  t.equal(new Set(won.map((a) => a.node)).size, 20, 'on 20 different nodes');
  t.notOk(won.some((a) => a.node === name(21)), 'the disabled node was not given');
  t.equal(refused.length, 30, '30 refused');
  t.match(refused[0]!.body, { error: { code: 'no_free_node', message: /no free node in group pool: 21 nodes, 20 allocated, 1 disabled/ } });
  t.ok(won.every((a) => typeof a.task === 'string' && a.vnfs === 'rocky9'), 'each allocation carries its deploy task');
  t.equal(answers.filter((a) => a.status !== 201 && a.status !== 409).length, 0, 'nothing else');

  const first = won[0]!;
  const task = await h.viewer.get(`/tasks/${first.task}`);
  t.match(task.body, { action: 'deploy', nodes: [{ node: first.node }] }, 'a deploy task of that node');
  t.equal(readFileSync(join(h.statedir, `power-${first.node}`), 'utf8').trim(), 'on', 'the deploy powered the node on');
  t.match((await h.viewer.get(`/nodes/${first.node}`)).body, { owner: first.owner, vnfs: 'rocky9' }, 'the node answer shows its owner and its VNFS');
  const listed = (await h.viewer.get('/allocations')).body as { items: Allocation[] };
  t.equal(listed.items.length, 20, 'GET /allocations lists them');
  const mine = (await h.viewer.get(`/allocations?owner=${first.owner}`)).body as { items: Allocation[] };
  t.same(mine.items.map((a) => [a.node, a.owner]), [[first.node, first.owner]], '?owner= filters');
  t.equal((await h.viewer.post('/allocations', { group: 'pool', vnfs: 'rocky9', owner: 'x' })).status, 403, 'a viewer may not allocate');

  // Release one with keep: running, free again; release another: powered off.
  const kept = await h.operator.request('DELETE', `/allocations/${first.node}?keep=true`);
  t.equal(kept.status, 200);
  t.match(kept.body, { node: first.node, owner: first.owner, task: null });
  const second = won[1]!;
  const off = await h.operator.request('DELETE', `/allocations/${second.node}`);
  t.equal(off.status, 200);
  const offTask = (off.body as Allocation).task!;
  await waitTask(offTask);
  t.equal(readFileSync(join(h.statedir, `power-${second.node}`), 'utf8').trim(), 'off', 'released without keep: powered off');
  t.equal(readFileSync(join(h.statedir, `power-${first.node}`), 'utf8').trim(), 'on', 'released with keep: still on');
  t.equal((await h.operator.request('DELETE', `/allocations/${second.node}`)).status, 409, 'releasing it twice: 409');
  t.equal((await h.viewer.get(`/allocations/${second.node}`)).status, 404);

  // Two free now: the same Idempotency-Key gets the same one twice.
  const key = { headers: { 'Idempotency-Key': 'one-nebula-vm-77' } };
  const a0 = await h.operator.post('/allocations', { group: 'pool', vnfs: 'rocky9', owner: 'vm-77', hostname: 'web01.example.org' }, key);
  const a2 = await h.operator.post('/allocations', { group: 'pool', vnfs: 'rocky9', owner: 'vm-77', hostname: 'web01.example.org' }, key);
  t.equal(a0.status, 201);
  t.equal(a2.status, 201);
  t.equal((a2.body as Allocation).node, (a0.body as Allocation).node, 'a retry with the same key gets the same node');
  t.equal(a2.headers.get('idempotent-replayed'), 'true');
  t.equal((a0.body as Allocation).hostname, 'web01.example.org');
  // The key is spent: for another owner, or once its allocation is released, it is refused (not a
  // new node under the old deploy task).
  const other = await h.operator.post('/allocations', { group: 'pool', vnfs: 'rocky9', owner: 'vm-78' }, key);
  t.equal(other.status, 422, 'the same key for another owner: 422');
  t.match(other.body, { error: { field: 'header.Idempotency-Key', message: /another owner/ } });
  t.equal((await h.operator.request('DELETE', `/allocations/${(a0.body as Allocation).node}?keep=true`)).status, 200);
  const stale = await h.operator.post('/allocations', { group: 'pool', vnfs: 'rocky9', owner: 'vm-77' }, key);
  t.equal(stale.status, 422, 'the key of a released allocation: 422');
  t.match(stale.body, { error: { field: 'header.Idempotency-Key', message: /since released/ } });
  // Two requests with one new key at once: one node, both answers name it, the other node stays free.
  const key2 = { headers: { 'Idempotency-Key': 'one-nebula-vm-79' } };
  const [r1, r2] = await Promise.all([1, 2].map(() => h.operator.post('/allocations', { group: 'pool', vnfs: 'rocky9', owner: 'vm-79' }, key2)));
  t.same([r1!.status, r2!.status], [201, 201], 'both concurrent retries: 201');
  t.equal((r1!.body as Allocation).node, (r2!.body as Allocation).node, 'both name the same node');
  const owned = ((await h.viewer.get('/allocations?owner=vm-79')).body as { items: Allocation[] }).items;
  t.equal(owned.length, 1, 'one node allocated for the two requests');
  t.equal((await h.operator.request('DELETE', `/allocations/${owned[0]!.node}?keep=true`)).status, 200);
  const again = await h.operator.post('/allocations', { group: 'pool', vnfs: 'rocky9', owner: 'vm-77', hostname: 'web01.example.org' }, { headers: { 'Idempotency-Key': 'one-nebula-vm-77b' } });
  t.equal(again.status, 201, 'a new key allocates again');
  const a1 = again;
  const bad = await h.operator.post('/allocations', { group: 'pool', vnfs: 'rocky9', owner: 'x', hostname: 'bad_name!' });
  t.equal(bad.status, 400);
  t.match(bad.body, { error: { field: 'body.hostname' } });
  const both = await h.operator.post('/allocations', { group: 'pool', pattern: 'p*', vnfs: 'rocky9', owner: 'x' });
  t.equal(both.status, 400, 'group and pattern both: 400');
  const novnfs = await h.operator.post('/allocations', { pattern: 'p*', vnfs: 'nosuch', owner: 'x' });
  t.equal(novnfs.status, 422);
  t.match(novnfs.body, { error: { field: 'body.vnfs' } });

  // The shell sees the owners too.
  const out = (await run(process.execPath, [CLI, '--config', h.configPath, 'node', 'list', 'p0*'])).stdout;
  // Piped: tab-separated, no header; the owner is the last column of an allocated node ('-' otherwise).
  t.match(out, new RegExp(`^${(a1.body as Allocation).node}\t.*\tvm-77$`, 'm'), 'node list shows the owner');
});
