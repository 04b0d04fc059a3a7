/**
 * `provisiond db status|migrate|copy` against a real PostgreSQL: a populated SQLite registry copied
 * whole (nodes, groups, attributes, leases, declined addresses, unknown machines, the timeline,
 * tokens, audit, tasks) and compared record by record with the copy.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { silentLogger } from '../../src/log/logger.js';
import type { RegistryDump } from '../../src/registry/archive.js';
import { PgRegistry } from '../../src/registry/postgres/registry.js';
import type { TaskRecord } from '../../src/registry/types.js';
import { postgresMissing, startPostgres } from '../lib/postgres.js';
import { mac } from '../registry/contract.js';
import { cliEnv } from './node-harness.js';

const missing = postgresMissing();

/** Both dumps in one order (the backends list some things in their own order). */
function sorted(d: RegistryDump): RegistryDump {
  const by = <T>(key: (x: T) => string) => (a: T, b: T) => key(a).localeCompare(key(b));
  return {
    ...d,
    nodes: [...d.nodes].sort(by((n) => n.name)),
    groups: [...d.groups].sort(by((g) => g.name)),
    leases: [...d.leases].sort(by((l) => l.hwaddr)),
    declined: [...d.declined].sort(by((x) => x.address)),
    unknown: [...d.unknown].sort(by((u) => u.nodeid)),
    events: [...d.events].sort((a, b) => a.time - b.time || a.stage.localeCompare(b.stage)),
    tokens: [...d.tokens].sort(by((x) => x.name)),
  };
}

t.test('db copy moves a whole SQLite registry into PostgreSQL; status and migrate report versions', { skip: missing }, async (t) => {
  const pg = await startPostgres(t);
  const env = cliEnv(t);
  const reg = env.registry();
  const now = Date.now();
  await reg.updateGroup('compute', { vnfs: 'rocky9', debug: 1, boot: 'local', desc: 'the racks', attrs: { 'power.driver': 'ipmi' } });
  for (let i = 1; i <= 40; i++) {
    await reg.addNode({ name: `n${String(i).padStart(4, '0')}`, nodeid: mac(i), group: i % 2 ? 'compute' : null, ipaddr: i <= 5 ? `10.0.1.${i}` : null, attrs: { rack: String(i % 4) } });
    await reg.putLease({ hwaddr: mac(i), address: `10.0.0.${100 + i}`, expires: now + i * 1000, state: i === 7 ? 'released' : 'bound', hostname: `n${i}`, clientId: i === 3 ? '01ab' : null, uuid: null });
    await reg.recordContact(mac(i), i % 3 ? 'ready' : 'init', `10.0.0.${100 + i}`, now - i);
    await reg.addEvent({ time: now - 1000 + i, nodeid: mac(i), source: 'dhcp', stage: 'offer', msg: `offered 10.0.0.${100 + i}`, ok: true, addr: null });
    await reg.addEvent({ time: now - 999 + i, nodeid: mac(i), source: 'dhcp', stage: 'ack', msg: `bound 10.0.0.${100 + i}`, ok: true, addr: null });
    await reg.addEvent({ time: now - 500 + i, nodeid: mac(i), source: 'node', stage: 'ready', msg: null, ok: i !== 9, addr: `10.0.0.${100 + i}` });
  }
  await reg.recordBootImage(mac(2), 'rocky9', 'ab'.repeat(32));
  await reg.putDeclined({ address: '10.0.0.250', expires: now + 60_000 });
  await reg.recordUnknown(mac(900), '10.0.0.99', 'dhcp');
  await reg.addEvent({ time: now, nodeid: mac(900), source: 'dhcp', stage: 'discover', msg: 'unknown machine', ok: false });
  await reg.createToken({ name: 'vcl', role: 'operator', hash: 'a'.repeat(64), created: now - 10, expires: null });
  await reg.touchToken('vcl', now - 5);
  await reg.createToken({ name: 'old', role: 'admin', hash: 'b'.repeat(64), created: now - 20, expires: now + 1000 });
  await reg.revokeToken('old', now - 1);
  for (let i = 0; i < 5; i++) {
    await reg.addAudit({ time: now + i, who: 'vcl', role: 'operator', action: 'nodes.patch', method: 'PATCH', path: `/api/v1/nodes/n000${i}`, target: `n000${i}`, status: 200, detail: 'vnfs=rocky9' });
  }
  const task = (id: string, o: Partial<TaskRecord> = {}): TaskRecord => ({
    id, action: 'power', params: { nodes: ['n0001'], action: 'on' }, status: 'complete', result: 'success', createdBy: 'vcl', created: now,
    started: now, finished: now + 1, progressAt: null, idempotencyKey: null, runner: 'master:1', cancelRequested: null,
    messages: [{ ts: now, message: 'on ok', error: false, node: 'n0001' }], nodes: [], ...o,
  });
  await reg.putTask(task('t1'));
  await reg.putTask(task('t2', { status: 'running', result: 'incomplete', idempotencyKey: 'k1' }));
  const source = await reg.dump();
  await reg.close();
  t.equal(source.nodes.length, 40);
  t.ok(source.events.length >= 121, 'the timeline has offers, acks and check-ins');

  const status = await env.run(['db', 'status']);
  t.match(status, { code: 0, out: /^sqlite .*provisiond\.db: schema version (\d+) \(this provisiond: \1\): current/ });

  const url = await pg.createDatabase(t, 'copied');
  const copy = await env.run(['db', 'copy', 'sqlite:var/provisiond.db', url]);
  t.equal(copy.code, 0, copy.err);
  t.match(copy.out, /^copied 40 nodes, 1 groups, 40 leases, 1 declined, 1 unknown, \d+ events, 2 tokens, 5 audit, 2 tasks$/m);

  const target = await PgRegistry.open({ url, logger: silentLogger() });
  t.teardown(() => target.close());
  const copied = await target.dump();
  t.same(sorted(copied), sorted(source), 'every record is in PostgreSQL as it was in SQLite');
  t.equal((await target.getNodeByAddress('10.0.0.102'))?.name, 'n0002', 'a node is found by its lease');
  t.equal((await target.addAudit({ time: now, who: 'x', role: 'admin', action: 'a', method: 'GET', path: '/', target: null, status: 200, detail: null })).id, 6, 'the audit log goes on after the copied ids');
  t.equal((await target.putTask(task('t3', { idempotencyKey: 'k1' }))).id, 't2', 'idempotency keys hold in the copy');

  const again = await env.run(['db', 'copy', 'sqlite:var/provisiond.db', url]);
  t.match(again, { code: 1, err: /is not empty: copy into a new database/ }, 'a copy never mixes into a used database');

  const fresh = await pg.createDatabase(t, 'fresh');
  writeFileSync(env.config, `statedir: ${env.dir}\ndatabase: "${fresh}"\n`);
  t.match(await env.run(['db', 'status']), { code: 0, out: /^postgres .*fresh.*: schema version 0 .*no schema yet/ });
  t.match(await env.run(['db', 'migrate']), { code: 0, out: /^postgres .*: schema version 0 -> \d+$/m });
  t.match(await env.run(['db', 'status']), { code: 0, out: /current/ });
  await pg.query("INSERT INTO schema_version (version, applied, what) VALUES (999, 0, 'future')", 'fresh');
  t.match(await env.run(['db', 'status']), { code: 1, out: /schema version 999 .*newer provisiond: upgrade provisiond/ });
  t.match(await env.run(['db', 'migrate']), { code: 1, err: /newer than this provisiond knows/ });
});
