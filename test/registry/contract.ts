/**
 * The contract every RegistryStore backend honours. A backend's test file calls `registryContract`
 * with a factory of empty databases; the same assertions then hold for SQLite now and PostgreSQL
 * later. Each assertion is something an admin or a server would notice.
 */
import type tapRoot from 'tap';
import { waitFor } from '../lib/sleep.js';
import { NodeNotFoundError } from '../../src/util/errors.js';
import { ImportEntryError, RegistryConflictError, RegistryValueError, TaskClaimLostError } from '../../src/registry/errors.js';
import { NamePatternExhaustedError, type AutoRegisterOptions, type RegistryStore, type TaskRecord } from '../../src/registry/types.js';

type Tap = typeof tapRoot;

export interface ContractBackend {
  /** Creates an empty database (removed in the test's teardown); returns how to open a connection to it. */
  create(t: { teardown(fn: () => unknown): void }): Promise<() => Promise<RegistryStore>>;
}

export const defaults: AutoRegisterOptions = { nodeName: 'n####', firstNode: 0, totalNodes: null, group: 'cluster', vnfs: '', enabled: true, debug: 0 };

/** `52:54:00:00:HH:LL` for i. */
export const mac = (i: number): string => `52:54:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`.toUpperCase();

export function registryContract(tap: Tap, backend: ContractBackend): void {
  async function fresh(t: { teardown(fn: () => unknown): void }) {
    const open = await backend.create(t);
    const reg = await open();
    const opened = [reg];
    t.teardown(async () => {
      for (const r of opened) await r.close().catch(() => {});
    });
    return {
      reg,
      reopen: async () => {
        const r = await open();
        opened.push(r);
        return r;
      },
    };
  }

  tap.test('contract: nodes are found by name, by nodeid in any notation, by fixed address', async (t) => {
    const { reg } = await fresh(t);
    const added = await reg.addNode({ name: 'n0001', nodeid: '52-54-00-aa-bb-01', group: 'compute', ipaddr: '10.0.0.11' });
    t.equal(added.nodeid, '52:54:00:AA:BB:01', 'nodeid stored canonical');
    t.equal((await reg.getNode('n0001'))?.nodeid, '52:54:00:AA:BB:01');
    t.equal((await reg.getNodeByNodeid('52:54:00:aa:bb:01'))?.name, 'n0001');
    t.equal((await reg.getNodeByNodeid('525400AABB01'))?.name, 'n0001');
    t.equal((await reg.getNodeByAddress('10.0.0.11'))?.name, 'n0001');
    t.equal(await reg.getNode('n0002'), null);
    t.equal(await reg.getNodeByNodeid('not a mac'), null, 'garbage finds nothing, does not throw');
    const ib = await reg.addNode({ name: 'ib1', nodeid: '80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:0b:0c' });
    t.equal(ib.nodeid.split(':').length, 20, 'IPoIB client identifier kept whole');
    t.same((await reg.listNodes()).map((n) => n.name).sort(), ['ib1', 'n0001']);
  });

  tap.test('contract: conflicts and bad values are refused, nothing changes', async (t) => {
    const { reg } = await fresh(t);
    await reg.addNode({ name: 'n0001', nodeid: mac(1), ipaddr: '10.0.0.11' });
    await t.rejects(reg.addNode({ name: 'n0001', nodeid: mac(2) }), RegistryConflictError, 'same name');
    await t.rejects(reg.addNode({ name: 'n0002', nodeid: mac(1).toLowerCase() }), RegistryConflictError, 'same nodeid');
    await t.rejects(reg.addNode({ name: 'n0002', nodeid: mac(2), ipaddr: '10.0.0.11' }), RegistryConflictError, 'same fixed address');
    await t.rejects(reg.addNode({ name: '../etc', nodeid: mac(2) }), RegistryValueError, 'name with a path');
    await t.rejects(reg.addNode({ name: 'n0002', nodeid: 'zz:zz' }), RegistryValueError, 'bad mac');
    await t.rejects(reg.addNode({ name: 'n0002', nodeid: mac(2), ipaddr: '10.0.0.256' }), RegistryValueError, 'bad ipaddr');
    await t.rejects(reg.updateNode('n0001', { debug: -1 }), RegistryValueError);
    await t.rejects(reg.updateNode('n0001', { boot: 'disk' as 'local' }), RegistryValueError);
    await t.rejects(reg.updateNode('n0001', { attrs: { 'bad key': 'x' } }), RegistryValueError);
    await t.rejects(reg.updateNode('nope', { debug: 1 }), NodeNotFoundError);
    t.equal((await reg.listNodes()).length, 1);
  });

  tap.test('contract: updates set and unset fields and attributes', async (t) => {
    const { reg, reopen } = await fresh(t);
    await reg.addNode({ name: 'n0001', nodeid: mac(1) });
    await reg.updateNode('n0001', { vnfs: 'rocky9', enabled: false, debug: 2, boot: 'local', desc: 'spare', attrs: { rack: '12', 'power.driver': 'ipmi' } });
    await reg.updateNode('n0001', { attrs: { rack: null, 'power.address': '10.1.0.1' }, desc: null });
    const again = await reopen();
    const n = await again.getNode('n0001');
    t.match(n, { vnfs: 'rocky9', enabled: false, debug: 2, boot: 'local', desc: null });
    t.same(n?.attrs, { 'power.driver': 'ipmi', 'power.address': '10.1.0.1' }, 'attributes persisted, rack removed');
  });

  tap.test('contract: rename, replace (motherboard swap) and delete', async (t) => {
    const { reg, reopen } = await fresh(t);
    await reg.addNode({ name: 'n0001', nodeid: mac(1), attrs: { rack: '1' } });
    await reg.addNode({ name: 'n0002', nodeid: mac(2) });
    await t.rejects(reg.renameNode('n0001', 'n0002'), RegistryConflictError);
    const renamed = await reg.renameNode('n0001', 'c001');
    t.match(renamed, { name: 'c001', nodeid: mac(1), attrs: { rack: '1' } });
    t.equal(await reg.getNode('n0001'), null);
    await reg.addEvent({ time: Date.now(), nodeid: mac(1), source: 'http', stage: 'init', msg: null, ok: true });
    await reg.putLease({ hwaddr: mac(1), address: '10.0.0.150', expires: Date.now() + 3600_000, state: 'bound' });
    await t.rejects(reg.replaceNodeid('c001', mac(2)), RegistryConflictError, 'the new board must not be another node');
    await reg.replaceNodeid('c001', '52:54:00:00:99:99');
    const r2 = await reopen();
    t.equal((await r2.getNodeByNodeid('52:54:00:00:99:99'))?.name, 'c001', 'the new address is the node');
    t.equal(await r2.getNodeByNodeid(mac(1)), null, 'the old board is gone');
    t.same((await r2.listEvents('52:54:00:00:99:99')).map((e) => e.stage), ['init'], 'history follows the node');
    t.equal((await r2.getLease('52:54:00:00:99:99'))?.address, '10.0.0.150', 'so does its address');
    t.equal((await r2.getNode('c001'))?.attrs.rack, '1', 'and its settings');
    await reg.deleteNode('n0002');
    await t.rejects(reg.deleteNode('n0002'), NodeNotFoundError);
    t.same((await reg.listNodes()).map((n) => n.name), ['c001']);
  });

  tap.test('contract: updates and deletes of many nodes are all or none', async (t) => {
    const { reg, reopen } = await fresh(t);
    for (let i = 1; i <= 5; i++) await reg.addNode({ name: `n000${i}`, nodeid: mac(i) });
    const names = ['n0001', 'n0002', 'n0003', 'n0004', 'n0005'];
    if (!reg.updateNodes || !reg.deleteNodes) {
      t.pass('backend without bulk methods: callers go node by node');
      return;
    }
    t.equal((await reg.updateNodes(names, { attrs: { rack: '7' } })).length, 5);
    await t.rejects(reg.updateNodes([...names, 'nope'], { vnfs: 'x' }), NodeNotFoundError);
    t.same((await reg.listNodes()).map((n) => n.vnfs), [null, null, null, null, null], 'a failed update changed nothing, in memory...');
    t.same((await (await reopen()).listNodes()).map((n) => n.vnfs), [null, null, null, null, null], '...nor in the database');
    await t.rejects(reg.deleteNodes(['n0001', 'nope']), NodeNotFoundError);
    t.equal((await reg.listNodes()).length, 5, 'a failed delete deleted nothing');
    await reg.deleteNodes(['n0001', 'n0002']);
    t.same((await reg.listNodes()).map((n) => n.name).sort(), ['n0003', 'n0004', 'n0005']);
    t.equal((await reg.getNode('n0005'))?.attrs.rack, '7');
  });

  tap.test('contract: import is all or nothing and names the bad entry', async (t) => {
    const { reg } = await fresh(t);
    await reg.addNode({ name: 'old', nodeid: mac(500) });
    const list = Array.from({ length: 100 }, (_, i) => ({ name: `n${String(i).padStart(4, '0')}`, nodeid: mac(i) }));
    const bad = [...list.slice(0, 50), { name: 'x', nodeid: mac(500) }, ...list.slice(50)];
    const err = await reg.importNodes(bad).catch((e: unknown) => e);
    t.ok(err instanceof ImportEntryError, 'refused');
    t.equal((err as ImportEntryError).index, 50, 'names the entry');
    t.match((err as Error).message, /entry 51/);
    t.equal((await reg.listNodes()).length, 1, 'nothing of the import was added');
    const dup = await reg.importNodes([...list, list[3]!]).catch((e: unknown) => e);
    t.equal((dup as ImportEntryError).index, 100, 'a duplicate inside the file is found too');
    t.equal(await reg.importNodes(list), 100);
    t.equal((await reg.listNodes()).length, 101);
  });

  tap.test('contract: auto-registration gives 200 distinct names at once, reuses gaps, stops when exhausted', async (t) => {
    const { reg } = await fresh(t);
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => reg.autoRegister(mac(i), defaults)));
    const names = new Set(results.map((r) => r.node.name));
    t.equal(names.size, 200, '200 distinct names');
    t.ok(names.has('n0000') && names.has('n0199'), 'numbered from firstNode');
    t.ok(results.every((r) => r.created));
    const again = await reg.autoRegister(mac(5).toLowerCase(), defaults);
    t.equal(again.created, false, 'a known address is not registered twice');
    t.equal(again.node.name, results[5]!.node.name);
    const n = await reg.getNode('n0000');
    t.equal(n?.group, 'cluster', 'gets the default group');
    await reg.deleteNode('n0010');
    t.equal((await reg.autoRegister(mac(1000), defaults)).node.name, 'n0010', 'the first free name');
    const few = { ...defaults, nodeName: 'gpu##x', firstNode: 1, totalNodes: 2 };
    t.equal((await reg.autoRegister(mac(2000), few)).node.name, 'gpu01x');
    t.equal((await reg.autoRegister(mac(2001), few)).node.name, 'gpu02x');
    await t.rejects(reg.autoRegister(mac(2002), few), NamePatternExhaustedError, 'exhausted is an error, never a reused name');
    t.equal(await reg.getNodeByNodeid(mac(2002)), null);
  });

  tap.test('contract: contacts are visible at once and durable after flush', async (t) => {
    const { reg, reopen } = await fresh(t);
    await reg.addNode({ name: 'n0001', nodeid: mac(1) });
    await reg.recordContact(mac(1).toLowerCase(), 'init', '10.0.0.101', 5000);
    t.match(await reg.getNode('n0001'), { state: 'init', lastaddr: '10.0.0.101', lastcontact: 5000 });
    await reg.recordContact(mac(1), null, null, 6000);
    t.match(await reg.getNode('n0001'), { state: 'init', lastaddr: '10.0.0.101', lastcontact: 6000 }, 'null keeps state and address');
    await reg.recordContact(mac(1), 'ready', '10.0.0.102', 7000);
    await reg.recordContact(mac(99), 'init', null, 7000);
    await reg.flush();
    const r2 = await reopen();
    t.match(await r2.getNode('n0001'), { state: 'ready', lastaddr: '10.0.0.102', lastcontact: 7000 });
  });

  tap.test('contract: what a node booted (VNFS and image sha256) is kept with it, beside its contacts', async (t) => {
    const { reg, reopen } = await fresh(t);
    await reg.addNode({ name: 'n0001', nodeid: mac(1), vnfs: 'demo' });
    t.match(await reg.getNode('n0001'), { bootVnfs: null, bootImage: null }, 'nothing reported yet');
    const sha = 'ab'.repeat(32);
    await reg.recordBootImage(mac(1).toLowerCase(), 'demo', sha);
    await reg.recordContact(mac(1), 'ready', '10.0.0.5', 9000);
    t.match(await reg.getNode('n0001'), { bootVnfs: 'demo', bootImage: sha, state: 'ready' }, 'visible at once, and a later contact keeps it');
    await reg.recordBootImage(mac(99), 'demo', sha);
    await reg.flush();
    const r2 = await reopen();
    t.match(await r2.getNode('n0001'), { bootVnfs: 'demo', bootImage: sha, state: 'ready', lastcontact: 9000 }, 'durable after flush');
    t.match(await r2.resolve((await r2.getNode('n0001'))!, { group: 'default', vnfs: '', enabled: true, debug: 0 }), { bootImage: sha }, 'and resolved nodes carry it');
  });

  tap.test('contract: nodes inherit from their group, then the defaults, and say where from', async (t) => {
    const { reg } = await fresh(t);
    await reg.updateGroup('compute', { vnfs: 'rocky9', debug: 1, attrs: { 'power.driver': 'ipmi', 'power.user': 'admin' } });
    await reg.addNode({ name: 'n0001', nodeid: mac(1), group: 'compute', debug: 3, attrs: { 'power.user': 'root' } });
    await reg.addNode({ name: 'n0002', nodeid: mac(2) });
    const r1 = await reg.resolve((await reg.getNode('n0001'))!, defaults);
    t.match(r1, { group: 'compute', vnfs: 'rocky9', debug: 3, enabled: true, boot: 'pxe' });
    t.same(r1.attrs, { 'power.driver': 'ipmi', 'power.user': 'root' });
    t.match(r1.sources, { vnfs: 'group', debug: 'node', enabled: 'default', 'attrs.power.driver': 'group', 'attrs.power.user': 'node' });
    const r2 = await reg.resolve((await reg.getNode('n0002'))!, defaults);
    t.match(r2, { group: 'cluster', vnfs: '', enabled: true, debug: 0 });
    t.match(r2.sources, { group: 'default', vnfs: 'default' });
    await reg.updateGroup('compute', { vnfs: null, attrs: { 'power.driver': null } });
    t.same((await reg.getGroup('compute'))?.attrs, { 'power.user': 'admin' });
    t.equal((await reg.resolve((await reg.getNode('n0001'))!, defaults)).vnfs, '', 'unset on the group: back to the default');
    t.same((await reg.listGroups()).map((g) => g.name), ['compute']);
    await reg.deleteGroup('compute');
    t.equal(await reg.getGroup('compute'), null);
    await t.rejects(reg.deleteGroup('compute'), NodeNotFoundError);
  });

  tap.test('contract: unknown machines are counted until registered', async (t) => {
    const { reg } = await fresh(t);
    await reg.recordUnknown(mac(7), '10.0.0.107', 'dhcp');
    await reg.recordUnknown(mac(7).toLowerCase(), null, 'http');
    await reg.recordUnknown(mac(8), null, 'dhcp');
    const seen = await reg.listUnknown();
    t.match(seen.find((u) => u.nodeid === mac(7)), { count: 2, lastaddr: '10.0.0.107', via: 'http' });
    t.equal(seen.length, 2);
    await reg.addNode({ name: 'n0007', nodeid: mac(7) });
    t.same((await reg.listUnknown()).map((u) => u.nodeid), [mac(8)], 'registered: no longer unknown');
  });

  tap.test('contract: leases by hwaddr and address, the node behind a lease, durable on close', async (t) => {
    const { reg, reopen } = await fresh(t);
    await reg.addNode({ name: 'n0001', nodeid: mac(1) });
    const expires = Date.now() + 3600_000;
    await reg.putLease({ hwaddr: mac(1).toLowerCase(), address: '10.0.0.100', expires, state: 'bound', hostname: 'n0001' });
    t.equal((await reg.getLease(mac(1)))?.address, '10.0.0.100');
    t.equal((await reg.getLeaseByAddress('10.0.0.100'))?.hwaddr, mac(1));
    t.equal((await reg.getNodeByAddress('10.0.0.100'))?.name, 'n0001', 'the node is found from its lease');
    await reg.putLease({ hwaddr: mac(1), address: '10.0.0.101', expires, state: 'bound' });
    t.equal(await reg.getLeaseByAddress('10.0.0.100'), null, 'the old address is free again');
    await reg.putLease({ hwaddr: mac(1), address: '10.0.0.101', expires, state: 'released' });
    t.equal(await reg.getNodeByAddress('10.0.0.101'), null, 'a released lease holds no node');
    // A storm's worth at once: group commits, each promise resolving once its lease is committed.
    await Promise.all(Array.from({ length: 1000 }, (_, i) => reg.putLease({ hwaddr: mac(100 + i), address: `10.1.${i >> 8}.${i & 255}`, expires, state: 'bound', uuid: null })));
    await reg.deleteLease(mac(100));
    await reg.close();
    const r2 = await reopen();
    t.equal((await r2.listLeases()).length, 1000, 'every lease accepted before close() is there');
    t.equal(await r2.getLease(mac(100)), null, 'the deleted one is not');
    t.match(await r2.getLease(mac(1)), { address: '10.0.0.101', state: 'released', expires });
  });

  tap.test('contract: declined addresses by address, holding no node, lifted by a later lease, durable on close', async (t) => {
    const { reg, reopen } = await fresh(t);
    await reg.addNode({ name: 'n0001', nodeid: mac(1) });
    const expires = Date.now() + 3600_000;
    await reg.putLease({ hwaddr: mac(1), address: '10.0.0.100', expires, state: 'bound' });
    await reg.putDeclined({ address: '10.0.0.100', expires });
    t.same(await reg.listDeclined(), [{ address: '10.0.0.100', expires }]);
    t.equal(await reg.getNodeByAddress('10.0.0.100'), null, 'no node is found by a declined address');
    t.equal((await reg.getLease(mac(1)))?.address, '10.0.0.100', "the client's lease stays, as the address it would like back");
    t.equal((await reg.listLeases()).length, 1, 'a decline is not a lease');
    await reg.putDeclined({ address: '10.0.0.101', expires });
    await reg.putDeclined({ address: '10.0.0.102', expires: expires + 1 });
    await reg.putLease({ hwaddr: mac(2), address: '10.0.0.101', expires, state: 'bound' });
    t.same((await reg.listDeclined()).map((d) => d.address).sort(), ['10.0.0.100', '10.0.0.102'], 'a lease of the address lifts its decline');
    await t.rejects(reg.putDeclined({ address: 'nope', expires }), { name: 'RegistryValueError' });
    await reg.close();
    const r2 = await reopen();
    t.same((await r2.listDeclined()).sort((a, b) => a.address.localeCompare(b.address)), [{ address: '10.0.0.100', expires }, { address: '10.0.0.102', expires: expires + 1 }], 'kept across a restart');
    t.equal(await r2.getNodeByAddress('10.0.0.100'), null);
  });

  tap.test('contract: claimNode gives each node to one caller only, across connections, committed', async (t) => {
    const { reg, reopen } = await fresh(t);
    await reg.importNodes(Array.from({ length: 20 }, (_, i) => ({ name: `c${String(i + 1).padStart(2, '0')}`, nodeid: mac(500 + i) })));
    const other = await reopen();
    const names = Array.from({ length: 20 }, (_, i) => `c${String(i + 1).padStart(2, '0')}`);
    // 50 callers at once, half through another connection, each asking for any of the 20.
    const claims = await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 ? other : reg).claimNode(names, 'alloc.owner', { attrs: { 'alloc.owner': `tenant${i}` } })),
    );
    const won = claims.filter((c) => c !== null);
    t.equal(won.length, 20, '20 claims won');
    t.equal(new Set(won.map((c) => c!.name)).size, 20, 'by 20 different nodes');
    t.equal(claims.filter((c) => c === null).length, 30, '30 found none left');
    const again = await reopen();
    const owners = (await again.listNodes()).map((n) => n.attrs['alloc.owner']);
    t.equal(new Set(owners).size, 20, 'each node keeps the owner that claimed it, committed');
    t.equal(await reg.claimNode(['c01', 'nosuch'], 'alloc.owner', { attrs: { 'alloc.owner': 'late' } }), null, 'a claimed or unknown node is skipped');
    await reg.updateNode('c05', { attrs: { 'alloc.owner': null } });
    t.match(await other.claimNode(names, 'alloc.owner', { attrs: { 'alloc.owner': 'next' } }), { name: 'c05' }, 'a released node is claimed again, seen from the other connection');
    await t.rejects(reg.claimNode(names, 'alloc.owner', { vnfs: 'x' }), /must set the attribute it claims/);
  });

  tap.test('contract: the timeline keeps events in order, filtered by time and count', async (t) => {
    const { reg, reopen } = await fresh(t);
    const t0 = Date.now() - 60_000;
    for (let i = 0; i < 10; i++) {
      await reg.addEvent({ time: t0 + i, nodeid: mac(1), source: 'dhcp', stage: `s${i}`, msg: i === 9 ? 'boom' : null, ok: i !== 9, addr: '10.0.0.1' });
    }
    await reg.addEvent({ time: t0 + 5, nodeid: mac(2), source: 'http', stage: 'other', msg: null, ok: true });
    const all = await reg.listEvents(mac(1).toLowerCase());
    t.same(all.map((e) => e.stage), ['s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9'], 'oldest first, one node only');
    t.match(all[9], { ok: false, msg: 'boom', source: 'dhcp', addr: '10.0.0.1' });
    t.same((await reg.listEvents(mac(1), { since: t0 + 7 })).map((e) => e.stage), ['s7', 's8', 's9']);
    t.same((await reg.listEvents(mac(1), { limit: 2 })).map((e) => e.stage), ['s8', 's9'], 'limit keeps the latest');
    await reg.close();
    t.equal((await (await reopen()).listEvents(mac(1))).length, 10, 'durable on close');
  });

  tap.test('contract: tasks stored committed, replaced by id, one per idempotency key and caller, listed newest first, durable', async (t) => {
    const { reg, reopen } = await fresh(t);
    const task = (id: string, o: Partial<TaskRecord> = {}): TaskRecord => ({
      id, action: 'power', params: { nodes: ['n0001'], action: 'on' }, status: 'queued', result: 'incomplete', createdBy: 'vcl', created: 1000,
      started: null, finished: null, progressAt: null, idempotencyKey: null, runner: 'master:1', cancelRequested: null, messages: [],
      nodes: [{ node: 'n0001', status: 'queued', result: 'incomplete', phase: null, progressAt: null, messages: [] }], ...o,
    });
    t.same(await reg.putTask(task('t1')), task('t1'), 'a new task is stored and returned');
    t.same(await reg.getTask('t1'), task('t1'));
    t.equal(await reg.getTask('nope'), null, 'an unknown id finds nothing');
    const done = task('t1', { status: 'complete', result: 'success', finished: 2000, messages: [{ ts: 2000, message: 'on ok', error: false, node: 'n0001' }] });
    await reg.putTask(done);
    t.same(await reg.getTask('t1'), done, 'putTask with a known id replaces it');
    const first = await reg.putTask(task('t2', { idempotencyKey: 'k1' }));
    t.equal(first.id, 't2');
    const retry = await reg.putTask(task('t3', { idempotencyKey: 'k1' }));
    t.equal(retry.id, 't2', 'the same caller and key: the first task is returned');
    t.equal(await reg.getTask('t3'), null, 'and the second is not stored');
    t.equal((await reg.putTask(task('t4', { idempotencyKey: 'k1', createdBy: 'opennebula' }))).id, 't4', 'another caller with the same key gets its own task');
    await reg.putTask(task('t5', { status: 'running' }));
    await t.rejects(reg.putTask(task('t6', { status: 'lost' as never })), { name: 'RegistryValueError' }, 'an unknown status is refused');
    t.same((await reg.listTasks()).map((x) => x.id), ['t5', 't4', 't2', 't1'], 'newest first');
    t.same((await reg.listTasks({ limit: 2 })).map((x) => x.id), ['t5', 't4']);
    t.same((await reg.listTasks({ before: 't4' })).map((x) => x.id), ['t2', 't1'], 'paging by id');
    t.same((await reg.listTasks({ unfinished: true })).map((x) => x.id), ['t5', 't4', 't2'], 'unfinished: neither terminated nor complete');
    t.same((await reg.listTasks({ status: ['complete', 'running'] })).map((x) => x.id), ['t5', 't1'], 'filtered by status');
    await reg.close();
    const r2 = await reopen();
    t.same(await r2.getTask('t1'), done, 'a task acknowledged is there after a reopen');
    t.equal((await r2.listTasks()).length, 4);
    t.equal((await r2.putTask(task('t7', { idempotencyKey: 'k1' }))).id, 't2', 'the idempotency key holds across a reopen');
  });

  tap.test('contract: tasks claimed by two runners at once: each exactly once; left tasks only as seen; guarded writes', async (t) => {
    const { reg, reopen } = await fresh(t);
    const other = await reopen();
    const task = (id: string, o: Partial<TaskRecord> = {}): TaskRecord => ({
      id, action: 'power', params: { nodes: ['n0001'], action: 'on' }, status: 'queued', result: 'incomplete', createdBy: 'vcl', created: 1000,
      started: null, finished: null, progressAt: null, idempotencyKey: null, runner: null, cancelRequested: null, messages: [],
      nodes: [{ node: 'n0001', status: 'queued', result: 'incomplete', phase: null, progressAt: null, messages: [] }], ...o,
    });
    for (let i = 0; i < 30; i++) await reg.putTask(task(`q${String(i).padStart(2, '0')}`));
    await reg.putTask(task('cap', { action: 'capture' }));
    await reg.putTask(task('mine', { runner: 'cli:7' }));
    await reg.putTask(task('over', { runner: null, status: 'complete' }));
    // Two runners claim in small bites, at the same time, until nothing is left.
    const got = new Map<string, string[]>();
    const claimer = async (store: RegistryStore, me: string) => {
      for (;;) {
        const claimed = await store.claimTasks(me, { unclaimed: true, limit: 3, skipActions: ['capture'] });
        if (claimed.length === 0) return;
        for (const c of claimed) {
          t.equal(c.task.runner, me, 'a claimed task names its claimer');
          t.equal(c.from, null);
          t.equal(c.why, 'unclaimed');
          got.set(c.task.id, [...(got.get(c.task.id) ?? []), me]);
        }
      }
    };
    await Promise.all([claimer(reg, 'a:1'), claimer(other, 'b:2')]);
    t.equal(got.size, 30, 'every queued task claimed');
    t.ok([...got.values()].every((who) => who.length === 1), 'none claimed twice');
    t.equal((await reg.getTask('q07'))?.runner, got.get('q07')![0], 'the claim is committed');
    t.equal((await reg.getTask('cap'))?.runner, null, 'an action the runner cannot run is left for another');
    t.equal((await reg.getTask('mine'))?.runner, 'cli:7', 'a task with a runner is not "unclaimed"');

    // Left tasks: claimed only while their runner is still the one the caller saw gone.
    t.same(await reg.claimTasks('a:1', { left: [{ id: 'mine', runner: 'cli:6' }] }), [], 'another runner than the one seen gone: not taken');
    t.same(await reg.claimTasks('a:1', { left: [{ id: 'over', runner: null }] }), [], 'a finished task is never claimed');
    const [left] = await reg.claimTasks('a:1', { left: [{ id: 'mine', runner: 'cli:7' }] });
    t.match(left, { from: 'cli:7', why: 'left', task: { id: 'mine', runner: 'a:1' } }, 'taken from the runner that is gone');
    t.same(await other.claimTasks('b:2', { left: [{ id: 'mine', runner: 'cli:7' }] }), [], 'a second claim of the same left task gets nothing');
    t.same(await reg.claimTasks('a:1', { leaseMs: 5000 }), [], 'no heartbeats stored by a single server: nothing taken by lease');

    // A guarded write: only the task's runner writes it; the one it was taken from is refused.
    const mine = (await reg.getTask('mine'))!;
    await reg.putTask({ ...mine, status: 'running' }, { ifRunner: 'a:1' });
    t.equal((await reg.getTask('mine'))?.status, 'running', 'its runner writes it');
    await t.rejects(other.putTask({ ...mine, runner: 'cli:7', status: 'complete' }, { ifRunner: 'cli:7' }), TaskClaimLostError, 'the runner it was taken from is refused');
    t.equal((await reg.getTask('mine'))?.status, 'running', 'and wrote nothing');
    t.equal((await reg.putTask(task('new'), { ifRunner: 'z:9' })).id, 'new', 'a new task is stored whatever the guard');
  });

  tap.test('contract: vnfs images: the last publish is current, holders recorded, one cluster secret, bad input refused', async (t) => {
    const { reg } = await fresh(t);
    const sha = (c: string) => c.repeat(64);
    t.equal(await reg.getImage('demo'), null, 'no image before one is published');
    t.same(await reg.listImages(), [], 'none listed');
    const heard: string[] = [];
    let told = false;
    const off = reg.onImagePublished?.((v) => (v === null ? (told = true) : heard.push(v)));
    // PostgreSQL's LISTEN is set up on a connection of its own after the subscription returns; the
    // subscriber is told (null) once it is in place, and every publish from then on is heard.
    if (off) {
      t.ok(await waitFor(() => told, 10_000), 'the subscriber is told once it listens');
      t.equal(heard.length, 0, 'before any publish');
    }
    const a = await reg.publishImage({ vnfs: 'demo', sha256: sha('a'), bytes: 1234, builder: 'a:8080', skeletonSha256: null, config: 'compression: 1\n' });
    t.match(a, { vnfs: 'demo', sha256: sha('a'), bytes: 1234, builder: 'a:8080', skeletonSha256: null, config: 'compression: 1\n' }, 'publish answers the record');
    t.type(a.builtAt, 'number', 'with the time of the publish');
    t.same(await reg.getImage('demo'), a, 'read back as published');
    t.match(await reg.imageHolders('demo'), [{ server: 'a:8080', sha256: sha('a') }], 'the publisher holds it');
    const b = await reg.publishImage({ vnfs: 'demo', sha256: sha('b'), bytes: 99, builder: 'b:8080', skeletonSha256: sha('c'), config: null });
    t.ok(b.builtAt > a.builtAt, 'a later publish is later');
    t.equal((await reg.getImage('demo'))?.sha256, sha('b'), 'the last publish wins');
    t.equal((await reg.getImage('demo'))?.skeletonSha256, sha('c'), 'with its skeleton');
    await reg.holdImage('demo', sha('b'), 'a:8080');
    const holders = await reg.imageHolders('demo');
    t.same(holders.map((h) => [h.server, h.sha256]).sort(), [['a:8080', sha('b')], ['b:8080', sha('b')]], 'each server holds its latest image, once');
    await reg.publishImage({ vnfs: 'other', sha256: sha('d'), bytes: 1, builder: 'a:8080', skeletonSha256: null, config: null });
    t.same((await reg.listImages()).map((i) => i.vnfs), ['demo', 'other'], 'listed by name');
    await t.rejects(reg.publishImage({ vnfs: 'demo', sha256: 'abc', bytes: 1, builder: 'a:8080', skeletonSha256: null, config: null }), /sha256 "abc" is not 64 hex digits/, 'a bad sha256 is refused');
    await t.rejects(reg.holdImage('demo', 'XYZ', 'a:8080'), /not 64 hex digits/, 'a bad held sha256 is refused');
    t.equal((await reg.getImage('demo'))?.sha256, sha('b'), 'and wrote nothing');
    t.equal(await reg.forgetImage('other'), true, 'a deleted vnfs is forgotten');
    t.equal(await reg.getImage('other'), null, 'it has no image any more');
    t.same(await reg.imageHolders('other'), [], 'nor holders');
    t.equal(await reg.forgetImage('other'), false, 'forgetting it again: there was none');
    t.equal((await reg.getImage('demo'))?.sha256, sha('b'), 'the others stay');
    const secret = await reg.clusterSecret();
    t.match(secret, /^[0-9a-f]{64}$/, 'a cluster secret of 256 bits');
    t.equal(await reg.clusterSecret(), secret, 'the same at every ask');
    if (off) {
      const t0 = Date.now();
      while (heard.length < 5 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 20));
      t.same([...new Set(heard)].sort(), ['demo', 'other'], 'publishes are told to subscribers');
      off();
    }
  });
}
