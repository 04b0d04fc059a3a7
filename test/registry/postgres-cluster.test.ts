/**
 * The leader of singleton work among servers on one PostgreSQL (src/registry/postgres/cluster.ts):
 * one leader at a time, a takeover within the lease after the leader stops beating (as after
 * kill -9), a generation that grows at each takeover, and fencing: a stale leader that wakes up
 * still believing it leads cannot write singleton results. `cluster status` lists the servers.
 */
import t from 'tap';
import { silentLogger } from '../../src/log/logger.js';
import { ClusterMember, FencedError, LEADER_LEASE_MS } from '../../src/registry/postgres/cluster.js';
import { PgRegistry } from '../../src/registry/postgres/registry.js';
import { runCli } from '../cli/node-harness.js';
import { postgresMissing, startPostgres } from '../lib/postgres.js';
import { makeStatedir } from '../lib/statedir.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';

t.test('leader election with fencing', { skip: postgresMissing() }, async (t) => {
  const server = await startPostgres(t);
  const url = await server.createDatabase(t, 'cluster');
  // Migrated by the registry; the members use pools of their own, as servers do.
  await (await PgRegistry.open({ url, logger: silentLogger() })).close();
  const pools: pg.Pool[] = [];
  const member = (id: string) => {
    const pool = new pg.Pool({ connectionString: url, max: 3 });
    pools.push(pool);
    return new ClusterMember(pool, { id, address: `${id}:8080`, version: 'test' }, silentLogger());
  };
  t.teardown(async () => {
    for (const p of pools) await p.end();
  });
  const a = member('a');
  const b = member('b');
  await a.start();
  await b.start();
  t.ok(a.isLeader && !b.isLeader, 'the first server leads, the second does not');
  const gen = a.currentGeneration!;

  // A fenced write of the leader goes through.
  await server.query('CREATE TABLE results (gen bigint, who text)', 'cluster');
  await a.fenced('a result', (c) => c.query("INSERT INTO results VALUES ($1, 'a')", [gen]));

  // A stops beating, as a process stopped by SIGSTOP (or killed) would: B takes over.
  const stall = await (async () => {
    // Only the timer loop stops; `a` keeps its belief that it leads.
    await a['beating'];
    clearTimeout(a['timer']!);
    (a as unknown as { stopped: boolean }).stopped = true;
    const t0 = Date.now();
    while (!b.isLeader && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 50));
    return Date.now() - t0;
  })();
  t.ok(b.isLeader, `B took over in ${stall} ms`);
  t.ok(stall <= 10_000, `within 10 s (lease ${LEADER_LEASE_MS} ms plus a heartbeat)`);
  t.equal(b.currentGeneration, gen + 1, 'at the next generation');
  t.ok(a.isLeader, 'the stale leader still believes it leads');
  await t.rejects(
    a.fenced('a late result', (c) => c.query("INSERT INTO results VALUES ($1, 'a-late')", [gen])),
    FencedError,
    'its singleton write is refused (fenced by the generation)',
  );
  t.notOk(a.isLeader, 'and it knows now that it does not lead');
  await b.fenced('b result', (c) => c.query("INSERT INTO results VALUES ($1, 'b')", [gen + 1]));
  const rows = (await server.query('SELECT who FROM results ORDER BY who', 'cluster')).rows.map((r: { who: string }) => r.who);
  t.same(rows, ['a', 'b'], 'only the leaders of their time wrote');

  // cluster status, from the CLI of a master's shell.
  const dir = makeStatedir(t, {}, { prefix: 'pvd-cluster-' });
  const config = join(dir, 'provisiond.yaml');
  writeFileSync(config, `statedir: ${dir}\ndatabase: "${url}"\n`);
  const status = await runCli(['--config', config, 'cluster', 'status']);
  t.equal(status.code, 0, status.err);
  t.match(status.out, /^SERVER\s+ADDRESS\s+VERSION\s+HEARTBEAT\s+LAG\s+LEADER/, 'a table of the servers');
  t.match(status.out, /\nb\s+b:8080\s+test\s+\S+\s+\d+\.\ds\s+yes \(generation \d+\)/, 'B leads');
  const json = JSON.parse((await runCli(['--config', config, 'cluster', 'status', '--json'])).out) as { servers: Array<{ id: string; leader: boolean; lagMs: number }> };
  t.same(
    json.servers.map((s) => [s.id, s.leader]),
    [
      ['a', false],
      ['b', true],
    ],
    'both servers listed, B the leader',
  );
  t.ok(json.servers.find((s) => s.id === 'a')!.lagMs >= LEADER_LEASE_MS, "A's lag shows it stopped beating");

  // B leaves cleanly: the leadership is free at once.
  await b.stop();
  const c = member('c');
  await c.start();
  t.ok(c.isLeader, 'a server starting after the leader left leads at once');
  t.equal(c.currentGeneration, gen + 2, 'at the next generation');
  await c.stop();
});

t.test('a leader whose database host vanishes stops acting as the leader within the lease', { skip: postgresMissing() }, async (t) => {
  const server = await startPostgres(t);
  const url = await server.createDatabase(t, 'vanish');
  await (await PgRegistry.open({ url, logger: silentLogger() })).close();
  const pool = new pg.Pool({ connectionString: url, max: 3 });
  pool.on('error', () => {});
  const leases: boolean[] = [];
  const a = new ClusterMember(pool, { id: 'a', address: 'a:8080', version: 'test' }, silentLogger(), { leaseMs: 2000, heartbeatMs: 250 });
  a.onLeadership = (leader) => leases.push(leader);
  await a.start();
  t.ok(a.isLeader, 'the only server leads');
  // Every PostgreSQL process stopped: the beat in flight is neither answered nor refused.
  server.freeze();
  const t0 = Date.now();
  while (a.isLeader && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
  t.notOk(a.isLeader, `no longer the leader ${Date.now() - t0} ms after the database vanished (lease 2000 ms)`);
  t.ok(Date.now() - t0 <= 2000 + 250 + 1000, 'within the lease and a heartbeat');
  server.thaw();
  const t1 = Date.now();
  while (!a.isLeader && Date.now() - t1 < 10_000) await new Promise((r) => setTimeout(r, 50));
  t.ok(a.isLeader, 'the leader again once the database answers');
  t.same(leases, [true, false, true], 'told each change');
  await a.stop();
  await pool.end();
});
