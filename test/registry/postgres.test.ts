/**
 * The registry contract against the PostgreSQL backend: a real PostgreSQL (test/lib/postgres.ts),
 * a fresh database per test. Plus what only a shared database shows: atomic lease claims between
 * two stores (as two servers), schema versions, and refusing a database from a newer provisiond.
 */
import t from 'tap';
import { silentLogger } from '../../src/log/logger.js';
import { LeaseConflictError, RegistryUnavailableError, TaskClaimLostError } from '../../src/registry/errors.js';
import type { TaskRecord } from '../../src/registry/types.js';
import { PG_SCHEMA_VERSION } from '../../src/registry/postgres/migrations.js';
import { createPool } from '../../src/registry/postgres/connection.js';
import { PgRegistry } from '../../src/registry/postgres/registry.js';
import { postgresMissing, startPostgres, type PostgresServer } from '../lib/postgres.js';
import { waitFor } from '../lib/sleep.js';
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

  t.test('a lent-out connection that the server ends does not end the process; the pool goes on', async (t) => {
    await backend.create(t); // starts the server if this test runs alone
    const url = await server!.createDatabase(t);
    const db = /@\/(\w+)\?/.exec(url)![1]!;
    const pool = createPool({ url, applicationName: 'lent-out' });
    t.teardown(() => pool.end());
    // A transaction between two of its steps: the connection is lent out, no query runs on it.
    const client = await pool.connect();
    await client.query('BEGIN');
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    // The server ends it (an admin's pg_terminate_backend, a restart): pg emits 'error' on the
    // client, which ended the daemon when nobody listened.
    await server!.query(`SELECT pg_terminate_backend(${pid})`, db);
    await new Promise((r) => setTimeout(r, 500));
    await t.rejects(client.query('SELECT 1'), 'the next step of that transaction fails');
    client.release(true);
    t.equal((await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one, 1, 'and the pool answers on a new connection');
  });

  t.test('image notifications: a subscriber is told when LISTEN is in place, and again once it is back after a lost connection', async (t) => {
    await backend.create(t); // starts the server if this test runs alone
    const url = await server!.createDatabase(t);
    const db = /@\/(\w+)\?/.exec(url)![1]!;
    const reg = await PgRegistry.open({ url, logger: silentLogger(), poolSize: 2 });
    const other = await PgRegistry.open({ url, logger: silentLogger(), poolSize: 2 });
    t.teardown(async () => {
      await reg.close();
      await other.close();
    });
    const told: Array<string | null> = [];
    const off = reg.onImagePublished((v) => told.push(v));
    t.teardown(off);
    t.ok(await waitFor(() => told.includes(null), 10_000), 'told it listens');
    const sha = (c: string) => c.repeat(64);
    await other.publishImage({ vnfs: 'first', sha256: sha('a'), bytes: 1, builder: 'b:8080', skeletonSha256: null, config: null });
    t.ok(await waitFor(() => told.includes('first'), 5_000), "another server's publish right after is heard");
    // The listening connection is ended (a database restart, an admin): what is published before it is
    // back is not notified; the subscriber is told to read everything again when it is.
    const ended = await server!.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'provisiond vnfs listener' AND datname = current_database()`, db);
    t.equal(ended.rowCount, 1, 'the listening connection is ended');
    await other.publishImage({ vnfs: 'missed', sha256: sha('b'), bytes: 1, builder: 'b:8080', skeletonSha256: null, config: null });
    t.ok(await waitFor(() => told.filter((v) => v === null).length === 2, 10_000), 'told it listens again once the connection is back (2 s later)');
    await other.publishImage({ vnfs: 'after', sha256: sha('c'), bytes: 1, builder: 'b:8080', skeletonSha256: null, config: null });
    t.ok(await waitFor(() => told.includes('after'), 5_000), 'publishes are heard again');
  });

  t.test('tasks: three servers claim 60 at once (SKIP LOCKED), each once; a stopped server\'s tasks are taken by heartbeat', async (t) => {
    await backend.create(t); // starts the server if this test runs alone
    const url = await server!.createDatabase(t);
    const db = /@\/(\w+)\?/.exec(url)![1]!;
    const open = () => PgRegistry.open({ url, logger: silentLogger(), poolSize: 4 });
    const [a, b, c] = [await open(), await open(), await open()];
    const stores = [a, b, c];
    t.teardown(async () => {
      for (const s of stores) await s.close();
    });
    const task = (id: string): TaskRecord => ({
      id, action: 'power', params: { nodes: ['n0001'], action: 'on' }, status: 'queued', result: 'incomplete', createdBy: 'vcl', created: 1000,
      started: null, finished: null, progressAt: null, idempotencyKey: null, runner: null, cancelRequested: null, messages: [],
      nodes: [{ node: 'n0001', status: 'queued', result: 'incomplete', phase: null, progressAt: null, messages: [] }],
    });
    // Three servers, as their heartbeats have them.
    await server!.query("INSERT INTO servers (id, address, version, started, heartbeat) VALUES ('a:1', 'a', 't', now(), now()), ('b:2', 'b', 't', now(), now()), ('c:3', 'c', 't', now(), now())", db);
    for (let i = 0; i < 60; i++) await a.putTask(task(`t${String(i).padStart(2, '0')}`));
    const got = new Map<string, string[]>();
    // A takes the first ten alone (the part of the test about A stopping needs some), then all race.
    for (const x of await a.claimTasks('a:1', { unclaimed: true, limit: 10 })) got.set(x.task.id, ['a:1']);
    await Promise.all(
      stores.map(async (store, i) => {
        const me = ['a:1', 'b:2', 'c:3'][i]!;
        for (;;) {
          const claimed = await store.claimTasks(me, { unclaimed: true, leaseMs: 5000, limit: 2 });
          if (claimed.length === 0) return;
          for (const x of claimed) got.set(x.task.id, [...(got.get(x.task.id) ?? []), me]);
        }
      }),
    );
    t.equal(got.size, 60, 'every task claimed');
    t.ok([...got.values()].every((who) => who.length === 1), 'none twice');
    const per = (me: string) => [...got.values()].filter((w) => w[0] === me).length;
    t.ok([per('a:1') > 10, per('b:2') > 0, per('c:3') > 0].filter(Boolean).length >= 2, `shared among the servers (a ${per('a:1')}, b ${per('b:2')}, c ${per('c:3')})`);
    const servers = (await server!.query('SELECT server, count(*)::int AS n FROM tasks GROUP BY server ORDER BY server', db)).rows as Array<{ server: string | null; n: number }>;
    t.same(
      servers.map((r) => [r.server, r.n]),
      [['a:1', per('a:1')], ['b:2', per('b:2')], ['c:3', per('c:3')]].filter(([, n]) => (n as number) > 0),
      'each claim names its server',
    );

    // A stops beating (killed): once its heartbeat is older than the lease, B takes its tasks.
    const ofA = [...got].filter(([, w]) => w[0] === 'a:1').map(([id]) => id).sort();
    t.same(await b.claimTasks('b:2', { leaseMs: 5000 }), [], 'a live server keeps its tasks');
    await server!.query("UPDATE servers SET heartbeat = now() - interval '6 seconds' WHERE id = 'a:1'", db);
    await server!.query("UPDATE servers SET heartbeat = now() - interval '3 seconds' WHERE id = 'b:2'", db);
    t.same(await b.claimTasks('b:2', { leaseMs: 5000 }), [], 'not by a server whose own heartbeat lags as much (a database outage: all were silent)');
    await server!.query("UPDATE servers SET heartbeat = now() WHERE id = 'b:2'", db);
    const taken = await b.claimTasks('b:2', { leaseMs: 5000 });
    t.same(taken.map((x) => x.task.id).sort(), ofA, "B takes every task of A's");
    t.ok(taken.every((x) => x.from === 'a:1' && x.why === 'server-stopped' && x.task.runner === 'b:2'), 'from A, because A stopped');
    t.same(await c.claimTasks('c:3', { leaseMs: 5000 }), [], 'and C none of them: they are B\'s now');
    // A wakes up (it was only paused): its writes are refused, the task is B's.
    const one = taken[0]!.task;
    await t.rejects(a.putTask({ ...one, runner: 'a:1', status: 'complete' }, { ifRunner: 'a:1' }), TaskClaimLostError, "A's late write is refused");
    t.equal((await c.getTask(one.id))?.runner, 'b:2', 'nothing of it written');
    // A server that leaves (SIGTERM) deletes its row: its tasks are free at once.
    await server!.query("DELETE FROM servers WHERE id = 'c:3'", db);
    t.equal((await b.claimTasks('b:2', { leaseMs: 5000 })).length, per('c:3'), "a server that left: its tasks taken without waiting for the lease");
    // A CLI's task (no server claimed it) is never taken by heartbeat.
    await a.putTask({ ...task('cli'), runner: 'cli-host:77' });
    t.same(await b.claimTasks('b:2', { leaseMs: 5000 }), [], "a CLI's task is not a server's: not taken by heartbeat");
  });

  t.test('an unreachable database is a clear error, not a hang', async (t) => {
    const err = await PgRegistry.open({ url: 'postgres://nobody@/none?host=/nonexistent-pvd-socket&port=1', logger: silentLogger(), connectTimeout: 3000 }).catch((e: unknown) => e);
    t.type(err, RegistryUnavailableError);
    t.match((err as Error).message, /registry database postgres:\/\/nobody@\/none.* is unreachable/);
  });
}
