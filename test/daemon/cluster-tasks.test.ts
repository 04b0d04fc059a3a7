/**
 * Tasks shared by three `provisiond serve` processes on one PostgreSQL: a task accepted by any
 * server's API is a durable row that any server may claim (FOR UPDATE SKIP LOCKED). 24 power tasks
 * asked of the three APIs at once each run exactly once (the exec power driver appends the node's
 * name to a file at each call). Then `kill -9` of the server running a reload: another server takes
 * it over within 10 s; the node whose power call was cut ends with the reason (the server stopped,
 * so whether the call happened is unknown), the node already powered is waited for again, never
 * powered twice. A server stalled (SIGSTOP) loses its task the same way, and once woken cannot write
 * it any more.
 */
import t from 'tap';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log/logger.js';
import { PgRegistry } from '../../src/registry/postgres/registry.js';
import { createToken } from '../../src/registry/tokens.js';
import type { TaskRecord } from '../../src/registry/types.js';
import { killQuietly } from '../lib/cleanup.js';
import { ServeProcess, testConfig } from '../lib/daemon.js';
import { postgresMissing, startPostgres } from '../lib/postgres.js';
import { sleep, waitFor } from '../lib/sleep.js';
import { makeStatedir } from '../lib/statedir.js';

t.test('tasks claimed by any of three servers; a killed server\'s task taken over', { skip: postgresMissing() }, async (t) => {
  const pg = await startPostgres(t);
  const url = await pg.createDatabase(t, 'tasks');
  const work = makeStatedir(t, {}, { prefix: 'pvd-ctasks-' });
  const calls = join(work, 'calls');
  writeFileSync(calls, '');
  // The power scripts of the exec driver: each call appends the node's name to `calls`.
  const powerDir = (name: string, on: string): string => {
    const dir = join(work, name);
    mkdirSync(dir);
    const scripts: Record<string, string> = { on, cycle: on, status: 'echo off', bootdev: 'exit 0', off: 'exit 0' };
    for (const [verb, body] of Object.entries(scripts)) {
      writeFileSync(join(dir, verb), `#!/bin/sh\n${body}\n`);
      chmodSync(join(dir, verb), 0o755);
    }
    return dir;
  };
  const quick = powerDir('quick', `echo "$1" >> ${calls}; sleep 0.3`);
  // A BMC that takes 12 s: the call outlives a stall of its server.
  const stalling = powerDir('stalling', `echo "$1" >> ${calls}; sleep 12`);
  // A BMC that never answers: the call is in flight when its server is killed.
  const hung = powerDir('hung', `echo "$1" >> ${calls}; echo $$ > ${join(work, 'hung.pid')}; exec sleep 120`);
  t.teardown(() => {
    const pidFile = join(work, 'hung.pid');
    if (existsSync(pidFile)) killQuietly(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
  });

  const reg = await PgRegistry.open({ url, logger: silentLogger() });
  t.teardown(() => reg.close());
  const names = Array.from({ length: 24 }, (_, i) => `t${String(i + 1).padStart(2, '0')}`);
  const mac = (i: number) => `52:54:00:19:01:${i.toString(16).padStart(2, '0')}`;
  await reg.importNodes([...names, 'slow01', 'r01'].map((name, i) => ({ name, nodeid: mac(i + 1), vnfs: 'demo', attrs: { 'power.driver': 'exec', 'power.dir': quick } })));
  await reg.updateNode('slow01', { attrs: { 'power.dir': hung } });
  await reg.addNode({ name: 'stall01', nodeid: mac(40), vnfs: 'demo', attrs: { 'power.driver': 'exec', 'power.dir': stalling } });
  const { secret } = await createToken(reg, { name: 'ops', role: 'operator' });
  const auth = { authorization: `Bearer ${secret}`, 'content-type': 'application/json' };

  const start = async (name: string): Promise<{ p: ServeProcess; api: string; id: string }> => {
    const dir = makeStatedir(t, {}, { prefix: `pvd-ctasks-${name}-`, layout: true });
    const configPath = join(dir, 'provisiond.yaml');
    writeFileSync(configPath, testConfig(dir, `database: "${url}"\n`));
    const p = await ServeProcess.start({ configPath });
    t.teardown(() => p.stop(2000));
    let api = '';
    await waitFor(() => (api = p.lines.map((l) => /^listening: api (\S+)$/.exec(String(l.msg))?.[1]).find(Boolean) ?? '') !== '', 10_000, 50);
    return { p, api, id: `${hostname()}:${p.child.pid}` };
  };
  const servers = [await start('a'), await start('b'), await start('c')];
  const post = async (api: string, path: string, body: unknown): Promise<TaskRecord> => {
    const res = await fetch(`${api}/api/v1${path}`, { method: 'POST', headers: auth, body: JSON.stringify(body) });
    const answer = (await res.json()) as TaskRecord;
    t.equal(res.status, 202, `POST ${path}: 202`);
    return answer;
  };
  const task = async (id: string) => (await reg.getTask(id))!;
  const callsOf = () => readFileSync(calls, 'utf8').split('\n').filter(Boolean);

  t.test('24 power tasks asked of the three servers at once: each runs exactly once', async (t) => {
    const asked = await Promise.all(names.map((n, i) => post(servers[i % 3]!.api, `/nodes/${n}/power`, { action: 'on' })));
    t.equal(new Set(asked.map((a) => a.id)).size, 24, '24 tasks accepted');
    const ids = asked.map((a) => a.id);
    const finished = await waitFor(async () => (await Promise.all(ids.map(task))).every((x) => x.status === 'complete'), 60_000, 200);
    t.ok(finished, 'all complete');
    const done = await Promise.all(ids.map(task));
    t.ok(done.every((x) => x.result === 'success'), 'each a success');
    t.same(callsOf().sort(), [...names].sort(), 'each node powered on exactly once: no task ran twice, none was lost');
    const by = new Map<string, number>();
    for (const x of done) by.set(x.runner!, (by.get(x.runner!) ?? 0) + 1);
    t.ok([...by.keys()].every((r) => servers.some((s) => s.id === r)), 'each run by one of the servers');
    t.comment(`runs per server: ${[...by].map(([r, n]) => `${r} ${n}`).join(', ')}`);
    t.ok(done.every((x) => x.messages.filter((m) => m.message.startsWith('started by ')).length === 1), 'each started once');
  });

  t.test('kill -9 of the server running a reload: taken over within 10 s, the cut call ended with the reason', async (t) => {
    writeFileSync(calls, '');
    const asked = await post(servers[1]!.api, '/reload', { nodes: ['slow01', 'r01'], timeout: 300 });
    // Both power calls made: r01 powered, slow01's call hanging.
    await waitFor(async () => {
      const x = await task(asked.id);
      return x.runner !== null && x.nodes.find((n) => n.node === 'r01')!.messages.some((m) => /^powered on to boot pxe/.test(m.message)) && callsOf().includes('slow01');
    }, 20_000, 100);
    const before = await task(asked.id);
    const victim = servers.find((s) => s.id === before.runner);
    t.ok(victim, `run by a server (${before.runner})`);
    if (!victim) return;
    victim.p.kill('SIGKILL');
    await victim.p.exited;
    const t0 = Date.now();
    // Taken over: claimed by another runner, and what it found settled (its "taken over by" message
    // is written just after the claim, so a read in between sees the new runner and no message yet).
    const settled = async (from: string) => {
      const x = await task(asked.id);
      return x.runner !== from && x.messages.some((m) => m.message.startsWith('taken over by '));
    };
    const taken = await waitFor(() => settled(victim.id), 15_000, 100);
    const took = Date.now() - t0;
    t.ok(taken, `taken over ${took} ms after the kill -9`);
    t.ok(took <= 10_000, 'within 10 s');
    const after = await task(asked.id);
    t.ok(servers.some((s) => s.id === after.runner && s !== victim), `by a live server (${after.runner})`);
    t.match(after.messages.map((m) => m.message), [/^started by /, new RegExp(`^taken over by .*: the server ${victim.id} stopped \\(no heartbeat for 5 s\\)$`)]);
    const slow = after.nodes.find((n) => n.node === 'slow01')!;
    t.equal(slow.status, 'terminated', 'the node whose power call was cut is ended');
    t.match(slow.messages.at(-1), { error: true, message: `the server ${victim.id} stopped during the reload, so whether its power call happened is unknown` });
    const r01 = after.nodes.find((n) => n.node === 'r01')!;
    t.equal(r01.status, 'running', 'the node already powered is waited for again (resumed)');
    t.equal(after.status, 'running');
    await sleep(1500);
    t.same(callsOf().sort(), ['r01', 'slow01'], 'and never powered twice');
    // Cancelled through another live server's API: the one running it sees it.
    const other = servers.find((s) => s !== victim)!;
    const res = await fetch(`${other.api}/api/v1/tasks/${asked.id}/cancel`, { method: 'POST', headers: auth });
    t.ok(res.status < 300, `cancel: ${res.status}`);
    t.ok(await waitFor(async () => (await task(asked.id)).status === 'terminated', 10_000, 100), 'ends terminated');
  });

  t.test('a server stalled (SIGSTOP) loses its task; woken, it cannot write it any more', async (t) => {
    writeFileSync(calls, '');
    const live = servers.filter((s) => s.p.running);
    const asked = await post(live[0]!.api, '/nodes/stall01/power', { action: 'on' });
    await waitFor(async () => (await task(asked.id)).runner !== null && callsOf().includes('stall01'), 20_000, 100);
    const before = await task(asked.id);
    const stalled = live.find((s) => s.id === before.runner);
    t.ok(stalled, `run by a server (${before.runner})`);
    if (!stalled) return;
    stalled.p.kill('SIGSTOP');
    const t0 = Date.now();
    const taken = await waitFor(async () => {
      const x = await task(asked.id);
      return x.runner !== stalled.id && x.messages.some((m) => m.message.startsWith('taken over by '));
    }, 15_000, 100);
    t.ok(taken && Date.now() - t0 <= 10_000, `taken over ${Date.now() - t0} ms after the stall`);
    const ended = await task(asked.id);
    t.equal(ended.status, 'terminated', 'the call in flight on the stalled server is ended by the taker');
    t.match(ended.nodes[0]!.messages.at(-1), { message: `the server ${stalled.id} stopped during the power, so whether its power call happened is unknown` });
    stalled.p.kill('SIGCONT');
    // Its BMC call returns 12 s after it began: it writes the result, and is refused.
    const said = await waitFor(() => stalled.p.lines.some((l) => String(l.msg).startsWith(`task: taken over by ${ended.runner}, stopping it here`)), 20_000, 100);
    t.ok(said, 'woken, the stalled server learns the task was taken over and stops it');
    t.same(await task(asked.id), ended, 'and wrote nothing over the taker\'s record');
    t.same(callsOf(), ['stall01'], 'the BMC was called once');
  });
});
