/**
 * The leader among real `provisiond serve` processes on one PostgreSQL: the leader killed with -9
 * is replaced within 10 s (timed); a leader stopped with SIGSTOP is replaced, and once woken
 * (SIGCONT) it does not lead again: it says it lost the role, the other keeps it, and
 * `cluster status` shows both servers.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { runCli } from '../cli/node-harness.js';
import { ServeProcess, testConfig } from '../lib/daemon.js';
import { postgresMissing, startPostgres } from '../lib/postgres.js';
import { sleep } from '../lib/sleep.js';
import { makeStatedir } from '../lib/statedir.js';

t.test('leader takeover between provisiond serve processes', { skip: postgresMissing() }, async (t) => {
  const pg = await startPostgres(t);
  const url = await pg.createDatabase(t, 'leader');
  const leader = async (): Promise<{ server: string; generation: number; fresh: boolean } | null> => {
    const { rows } = await pg.query("SELECT server, generation, heartbeat > now() - interval '5 seconds' AS fresh FROM leader", 'leader');
    return rows[0] ? { server: rows[0].server, generation: Number(rows[0].generation), fresh: rows[0].fresh } : null;
  };
  const start = async (name: string): Promise<ServeProcess> => {
    const dir = makeStatedir(t, {}, { prefix: `pvd-leader-${name}-` });
    const configPath = join(dir, 'provisiond.yaml');
    writeFileSync(configPath, testConfig(dir, `database: "${url}"\n`));
    const p = await ServeProcess.start({ configPath });
    t.teardown(() => p.stop(2000));
    return p;
  };
  const idOf = (p: ServeProcess): string => `${hostname()}:${p.child.pid}`;
  const a = await start('a');
  const b = await start('b');
  t.equal((await leader())?.server, idOf(a), 'the first server leads');
  const gen = (await leader())!.generation;

  // kill -9 of the leader: B takes over, timed.
  a.kill('SIGKILL');
  await a.exited;
  const t0 = Date.now();
  while (Date.now() - t0 < 15_000 && (await leader())?.server !== idOf(b)) await sleep(100);
  const took = Date.now() - t0;
  t.equal((await leader())?.server, idOf(b), `B leads ${took} ms after the kill -9`);
  t.ok(took <= 10_000, 'within 10 s');
  t.equal((await leader())?.generation, gen + 1, 'at the next generation');

  // SIGSTOP of the leader B; C takes over; B wakes and must not lead again.
  const c = await start('c');
  b.kill('SIGSTOP');
  const t1 = Date.now();
  while (Date.now() - t1 < 15_000 && (await leader())?.server !== idOf(c)) await sleep(100);
  t.equal((await leader())?.server, idOf(c), `C leads ${Date.now() - t1} ms after B stopped`);
  b.kill('SIGCONT');
  const t2 = Date.now();
  while (Date.now() - t2 < 5_000 && !b.lines.some((l) => l.msg === 'cluster: this server is no longer the leader')) await sleep(100);
  t.ok(
    b.lines.some((l) => l.msg === 'cluster: this server is no longer the leader'),
    'B, woken, says it is no longer the leader',
  );
  await sleep(2500);
  t.match(await leader(), { server: idOf(c), generation: gen + 2, fresh: true }, 'C still leads, at the generation of its takeover');

  const cli = makeStatedir(t, {}, { prefix: 'pvd-leader-cli-' });
  writeFileSync(join(cli, 'provisiond.yaml'), `statedir: ${cli}\ndatabase: "${url}"\n`);
  const status = await runCli(['--config', join(cli, 'provisiond.yaml'), 'cluster', 'status', '--json']);
  t.equal(status.code, 0, status.err);
  const servers = (JSON.parse(status.out) as { servers: Array<{ id: string; leader: boolean; lagMs: number }> }).servers;
  t.same(
    servers.filter((s) => s.lagMs < 5000).map((s) => [s.id, s.leader]).sort(),
    [
      [idOf(b), false],
      [idOf(c), true],
    ].sort(),
    'cluster status: B and C beating, C the leader',
  );
  t.ok(servers.some((s) => s.id === idOf(a) && s.lagMs > 5000), 'A, killed, listed with a growing lag');
});
