/**
 * The registry contract against the PostgreSQL backend: a real PostgreSQL (test/lib/postgres.ts),
 * a fresh database per test. Plus what only a shared database shows: atomic lease claims between
 * two stores (as two servers), schema versions, and refusing a database from a newer provisiond.
 */
import t from 'tap';
import { silentLogger } from '../../src/log/logger.js';
import { LeaseConflictError, RegistryUnavailableError } from '../../src/registry/errors.js';
import { PG_SCHEMA_VERSION } from '../../src/registry/postgres/migrations.js';
import { PgRegistry } from '../../src/registry/postgres/registry.js';
import { postgresMissing, startPostgres, type PostgresServer } from '../lib/postgres.js';
import { adminContract } from './admin-contract.js';
import { mac, registryContract, type ContractBackend } from './contract.js';

const missing = postgresMissing();
if (missing) {
  t.plan(0, missing);
} else {
  let server: PostgresServer | null = null;
  const backend: ContractBackend = {
    async create(tt) {
      server ??= await startPostgres(t);
      const url = await server.createDatabase(tt);
      return async () => PgRegistry.open({ url, logger: silentLogger(), poolSize: 4 });
    },
  };
  registryContract(t, backend);
  adminContract(t, backend);

  t.test('two servers racing for one address: exactly one claim commits, the other learns who holds it', async (t) => {
    const open = await backend.create(t);
    const a = await open();
    const b = await open();
    t.teardown(async () => {
      await a.close();
      await b.close();
    });
    const expires = Date.now() + 3600_000;
    let won = 0;
    const losers: LeaseConflictError[] = [];
    // 50 rounds, each two machines through two stores (two pools, as two servers) for one address.
    for (let i = 0; i < 50; i++) {
      const address = `10.9.0.${i + 1}`;
      const results = await Promise.allSettled([
        a.putLease({ hwaddr: mac(1000 + i), address, expires, state: 'bound' }),
        b.putLease({ hwaddr: mac(2000 + i), address, expires, state: 'bound' }),
      ]);
      for (const r of results) {
        if (r.status === 'fulfilled') won++;
        else if (r.reason instanceof LeaseConflictError) losers.push(r.reason);
        else throw r.reason;
      }
    }
    t.equal(won, 50, 'one claim per address committed');
    t.equal(losers.length, 50, 'the other got a LeaseConflictError');
    t.match(losers[0], { address: /^10\.9\.0\./, holder: /^52:54:00:00:0[37]:/ }, 'naming the address and its holder');
    const leases = await a.listLeases();
    t.equal(new Set(leases.map((l) => l.address)).size, leases.length, 'no address is leased twice');
    t.equal(leases.length, 50);
  });

  t.test('a released, expired or declined holder gives its address up to a new claim; a live one does not', async (t) => {
    const open = await backend.create(t);
    const reg = await open();
    t.teardown(() => reg.close());
    const now = Date.now();
    await reg.putLease({ hwaddr: mac(1), address: '10.0.0.1', expires: now + 3600_000, state: 'released' });
    await reg.putLease({ hwaddr: mac(2), address: '10.0.0.2', expires: now - 1000, state: 'bound' });
    await reg.putLease({ hwaddr: mac(3), address: '10.0.0.3', expires: now + 3600_000, state: 'bound' });
    await reg.putLease({ hwaddr: mac(4), address: '10.0.0.4', expires: now + 3600_000, state: 'bound' });
    await reg.putDeclined({ address: '10.0.0.4', expires: now + 1000 });
    for (const [i, addr] of [[11, '10.0.0.1'], [12, '10.0.0.2'], [14, '10.0.0.4']] as const) {
      await reg.putLease({ hwaddr: mac(i), address: addr, expires: now + 3600_000, state: 'bound' });
      t.equal((await reg.getLeaseByAddress(addr))?.hwaddr, mac(i), `${addr} goes to the new claim`);
    }
    await t.rejects(reg.putLease({ hwaddr: mac(13), address: '10.0.0.3', expires: now + 3600_000, state: 'bound' }), LeaseConflictError, 'a live lease keeps its address');
    t.equal((await reg.getLeaseByAddress('10.0.0.3'))?.hwaddr, mac(3));
    t.equal(await reg.getLease(mac(13)), null, 'the lost claim wrote nothing');
  });

  t.test('an exclusive claim of a machine that holds another live address is refused and changes nothing', async (t) => {
    const open = await backend.create(t);
    const reg = await open();
    t.teardown(() => reg.close());
    const now = Date.now();
    await reg.putLease({ hwaddr: mac(21), address: '10.0.0.21', expires: now + 3600_000, state: 'bound' });
    await reg.putDeclined({ address: '10.0.0.22', expires: now + 3600_000 });
    const err = await reg.putLease({ hwaddr: mac(21), address: '10.0.0.22', expires: now + 3600_000, state: 'bound' }, { exclusive: true }).then(
      () => null,
      (e: unknown) => e,
    );
    t.ok(err instanceof LeaseConflictError, 'refused with a LeaseConflictError');
    t.match(err, { lease: { hwaddr: mac(21), address: '10.0.0.21' } }, 'carrying the binding that stands');
    t.equal((await reg.getLease(mac(21)))?.address, '10.0.0.21', 'the machine keeps its address');
    t.same(
      (await reg.listDeclined()).map((d) => d.address),
      ['10.0.0.22'],
      'the declined mark of the address asked for is still there (the claim was undone whole)',
    );
    // Not exclusive (a server moving the machine on purpose): the lease moves, the mark goes.
    await reg.putLease({ hwaddr: mac(21), address: '10.0.0.22', expires: now + 3600_000, state: 'bound' });
    t.equal((await reg.getLease(mac(21)))?.address, '10.0.0.22');
    t.same(await reg.listDeclined(), [], 'a claim clears the declined mark of its address');
  });

  t.test('schema: versioned, and a database from a newer provisiond is refused with a clear error', async (t) => {
    await backend.create(t); // starts the server if this test runs alone
    const url = await server!.createDatabase(t);
    const fresh = await PgRegistry.open({ url, logger: silentLogger() });
    await fresh.close();
    const db = /@\/(\w+)\?/.exec(url)![1]!;
    t.equal((await server!.query('SELECT max(version) AS v FROM schema_version', db)).rows[0].v, PG_SCHEMA_VERSION, 'schema_version records the version');
    await server!.query(`INSERT INTO schema_version (version, applied, what) VALUES (${PG_SCHEMA_VERSION + 1}, 0, 'from the future')`, db);
    await t.rejects(PgRegistry.open({ url, logger: silentLogger() }), { name: 'RegistryUnavailableError', message: /newer than this provisiond knows.*upgrade provisiond/ });
  });

  t.test('an unreachable database is a clear error, not a hang', async (t) => {
    const err = await PgRegistry.open({ url: 'postgres://nobody@/none?host=/nonexistent-pvd-socket&port=1', logger: silentLogger(), connectTimeout: 3000 }).catch((e: unknown) => e);
    t.type(err, RegistryUnavailableError);
    t.match((err as Error).message, /registry database postgres:\/\/nobody@\/none.* is unreachable/);
  });
}
