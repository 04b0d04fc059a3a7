/**
 * The PostgreSQL registry with its in-memory cache (option `cache`, what the daemon opens): the
 * whole registry contract again, then what several servers on one database see: a change made
 * through one store (a server, the CLI, the API) is in the other's cache within 1 s, without
 * polling; lease claims of the other reach its lease listeners; a lost listening connection falls
 * back to the database and comes back by itself.
 */
import t from 'tap';
import { silentLogger } from '../../src/log/logger.js';
import type { LeaseChange } from '../../src/registry/postgres/cache.js';
import { PgRegistry } from '../../src/registry/postgres/registry.js';
import { postgresMissing, startPostgres, type PostgresServer } from '../lib/postgres.js';
import { adminContract } from './admin-contract.js';
import { defaults, mac, registryContract, type ContractBackend } from './contract.js';

/** Polls `check` every 10 ms until it is true or `ms` passed; returns the ms it took, or null. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number | null> {
  const t0 = performance.now();
  for (let i = 0; i < 1000 && performance.now() - t0 < ms; i++) {
    if (await check()) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 10));
  }
  return null;
}

const missing = postgresMissing();
if (missing) {
  t.plan(0, missing);
} else {
  let server: PostgresServer | null = null;
  const backend: ContractBackend = {
    async create(tt) {
      server ??= await startPostgres(t);
      const url = await server.createDatabase(tt);
      return async () => PgRegistry.open({ url, logger: silentLogger(), poolSize: 4, cache: true });
    },
  };
  registryContract(t, backend);
  adminContract(t, backend);

  const pair = async (tt: Parameters<ContractBackend['create']>[0]): Promise<[PgRegistry, PgRegistry, string]> => {
    server ??= await startPostgres(t);
    const url = await server.createDatabase(tt);
    const a = await PgRegistry.open({ url, logger: silentLogger(), poolSize: 4, cache: true });
    const b = await PgRegistry.open({ url, logger: silentLogger(), poolSize: 4, cache: true });
    tt.teardown(async () => {
      await a.close();
      await b.close();
    });
    return [a, b, url];
  };

  t.test('a change through one server is in force on the other within 1 s', async (t) => {
    const [a, b] = await pair(t);
    await a.addNode({ name: 'n0001', nodeid: mac(1), group: 'compute' });
    t.ok(await within(1000, async () => (await b.getNodeByNodeid(mac(1)))?.name === 'n0001'), 'a node added on A is found by hardware address on B');
    // Warm: B answers from memory now; A changes the node, its group and a lease.
    await a.updateNode('n0001', { vnfs: 'rocky9', attrs: { rack: '12' } });
    await a.updateGroup('compute', { enabled: false });
    await a.putLease({ hwaddr: mac(1), address: '10.0.0.50', expires: Date.now() + 60_000, state: 'bound' });
    const ms = await within(1000, async () => {
      const n = await b.getNodeByNodeid(mac(1));
      if (n?.vnfs !== 'rocky9' || n.attrs.rack !== '12') return false;
      const r = await b.resolve(n, defaults);
      return r.enabled === false && (await b.getNodeByAddress('10.0.0.50'))?.name === 'n0001';
    });
    t.ok(ms !== null, `node, group and lease changes reached B (in ${ms?.toFixed(0)} ms)`);
    await a.renameNode('n0001', 'c001');
    t.ok(await within(1000, async () => (await b.getNode('n0001')) === null && (await b.getNodeByNodeid(mac(1)))?.name === 'c001'), 'a rename: the old name is gone on B');
    await a.deleteLease(mac(1));
    await a.deleteNode('c001');
    await a.deleteGroup('compute');
    t.ok(
      await within(1000, async () => (await b.getNodeByNodeid(mac(1))) === null && (await b.getLease(mac(1))) === null && (await b.getGroup('compute')) === null),
      'deletions too',
    );
  });

  t.test('read your writes: a write through the cached store is seen by its next read', async (t) => {
    const [a] = await pair(t);
    for (let i = 0; i < 20; i++) {
      const name = `r${i}`;
      await a.addNode({ name, nodeid: mac(100 + i) });
      t.equal((await a.getNodeByNodeid(mac(100 + i)))?.name, name);
      await a.updateNode(name, { desc: `d${i}` });
      if ((await a.getNode(name))?.desc !== `d${i}`) t.fail(`update ${i} not read back`);
      await a.recordContact(mac(100 + i), 'ready', `10.1.0.${i}`, 1000 + i);
      const n = await a.getNodeByNodeid(mac(100 + i));
      if (n?.state !== 'ready' || n.lastcontact !== 1000 + i) t.fail(`contact ${i} not read back`);
    }
    t.pass('20 nodes: added, updated, contacted, each read back at once');
  });

  t.test("lease listeners hear the other server's claims, releases and declines", async (t) => {
    const [a, b] = await pair(t);
    const heard: LeaseChange[] = [];
    const off = b.onLeaseChange((c) => heard.push(c));
    t.teardown(off);
    await a.putLease({ hwaddr: mac(7), address: '10.0.0.7', expires: Date.now() + 60_000, state: 'bound' });
    await a.putDeclined({ address: '10.0.0.8', expires: Date.now() + 60_000 });
    await a.putLease({ hwaddr: mac(7), address: '10.0.0.7', expires: Date.now(), state: 'released' });
    const ok = await within(1000, async () => heard.some((c) => c.kind === 'lease' && c.lease?.state === 'released') && heard.some((c) => c.kind === 'declined'));
    t.ok(ok, 'B heard the claim, the decline and the release');
    t.match(
      heard.find((c) => c.kind === 'declined'),
      { kind: 'declined', address: '10.0.0.8', declined: { address: '10.0.0.8' } },
    );
  });

  t.test("the other server's leases arrive with their notifications: applied without reading them back", async (t) => {
    const [a, b] = await pair(t);
    const before = b.cacheStats()!;
    const expires = Date.now() + 60_000;
    for (let i = 0; i < 100; i++) await a.putLease({ hwaddr: mac(300 + i), address: `10.0.3.${i}`, expires, state: 'bound' });
    await a.putLease({ hwaddr: mac(300), address: '10.0.3.0', expires: Date.now(), state: 'released' });
    await a.deleteLease(mac(301));
    const ok = await within(2000, async () => (await b.getLease(mac(399)))?.address === '10.0.3.99' && (await b.getLease(mac(301))) === null);
    t.ok(ok, "B's cache has A's 100 claims and the deletion");
    t.match(await b.getLease(mac(350)), { hwaddr: mac(350), address: '10.0.3.50', expires, state: 'bound' }, 'each lease whole, as A wrote it');
    t.equal((await b.getLease(mac(300)))?.state, 'released', 'the release too');
    t.equal((await b.getLeaseByAddress('10.0.3.1')), null, 'a deleted lease frees its address');
    const after = b.cacheStats()!;
    t.ok(after.applied - before.applied >= 100, `B applied ${after.applied - before.applied} changes`);
    t.equal(after.leasesRead - before.leasesRead, 0, 'and read none of them back');
    // A's own writes are still read back once by A (a notification older than its write must not win).
    t.ok(a.cacheStats()!.leasesRead > 0, 'A read its own writes back');
  });

  t.test('the listening connection killed: reads go to the database, then the cache reloads by itself', async (t) => {
    const [a, b, url] = await pair(t);
    const db = /@\/(\w+)/.exec(url)![1];
    const listeners = `FROM pg_stat_activity WHERE datname = '${db}' AND application_name = 'provisiond listener'`;
    await a.addNode({ name: 'k1', nodeid: mac(50) });
    t.ok(await within(1000, async () => (await b.getNodeByNodeid(mac(50))) !== null));
    // Kill one listener from the server side (A's or B's); A changes a node meanwhile.
    await server!.query(`SELECT pg_terminate_backend(pid) ${listeners} AND pid = (SELECT max(pid) ${listeners})`);
    await a.updateNode('k1', { desc: 'changed while B was deaf' });
    t.ok(await within(3000, async () => (await b.getNodeByNodeid(mac(50)))?.desc === 'changed while B was deaf'), 'B sees the change (from the database, or after its reload)');
    const back = await within(8000, async () => (await server!.query(`SELECT count(*)::int AS n ${listeners}`)).rows[0].n === 2);
    t.ok(back !== null, 'both listeners are back');
    await a.updateNode('k1', { desc: 'after' });
    t.ok(await within(1000, async () => (await b.getNodeByNodeid(mac(50)))?.desc === 'after'), 'and notifications flow again');
  });
}
