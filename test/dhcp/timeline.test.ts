/**
 * The DHCP timeline rows: an ack absorbs its offer while both wait in the write batch (one row per
 * exchange in a boot storm), yet `node timeline` still shows both steps, with their own times,
 * also after a restart, and with `since`/`limit` windows that fall between them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import Database from 'better-sqlite3';
import { silentLogger } from '../../src/log/logger.js';
import { SqliteRegistry } from '../../src/registry/sqlite/registry.js';
import type { TimelineEvent } from '../../src/registry/types.js';

const A = '52:54:00:AA:00:01';
const B = '52:54:00:AA:00:02';
/** Times relative to now: events older than the retention are pruned on the first write. */
const T0 = Date.now() - 60_000;
const ev = (nodeid: string, time: number, stage: string, msg: string, source: TimelineEvent['source'] = 'dhcp'): TimelineEvent => ({ time: T0 + time, nodeid, source, stage, msg, ok: true, addr: null });

t.test('an offer and its ack: one row, two timeline steps', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-dhcp-tl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'r.db');
  let reg = SqliteRegistry.open({ path, logger: silentLogger(), flushInterval: 60_000 });
  await reg.addEvent(ev(A, 1000, 'offer', 'offered 10.0.0.100 boot undionly.kpxe'));
  await reg.addEvent(ev(B, 1001, 'offer', 'offered 10.0.0.101'));
  await reg.addEvent(ev(A, 1003, 'ack', 'bound 10.0.0.100 for 600 s boot undionly.kpxe'));
  await reg.addEvent(ev(A, 1500, 'tftp undionly.kpxe', 'sent', 'tftp'));
  // B's ack follows a TFTP step of B: its offer is not the last event queued, so it keeps its row.
  await reg.addEvent(ev(B, 1002, 'tftp x', 'sent', 'tftp'));
  await reg.addEvent(ev(B, 1004, 'ack', 'bound 10.0.0.101'));
  await reg.flush();
  const rows = new Database(path, { readonly: true });
  t.equal((rows.prepare('SELECT count(*) AS n FROM events WHERE nodeid = ?').get(A) as { n: number }).n, 2, "A's offer and ack share one row");
  t.equal((rows.prepare('SELECT count(*) AS n FROM events WHERE nodeid = ?').get(B) as { n: number }).n, 3, "B's steps keep their rows");
  rows.close();

  const check = async (reg: SqliteRegistry, when: string) => {
    const a = await reg.listEvents(A);
    t.same(a.map((e) => [e.time - T0, e.source, e.stage, e.msg]), [
      [1000, 'dhcp', 'offer', 'offered 10.0.0.100 boot undionly.kpxe'],
      [1003, 'dhcp', 'ack', 'bound 10.0.0.100 for 600 s boot undionly.kpxe'],
      [1500, 'tftp', 'tftp undionly.kpxe', 'sent'],
    ], `${when}: every step of A, in order, with its own time`);
    t.same((await reg.listEvents(B)).map((e) => e.stage), ['offer', 'tftp x', 'ack'], `${when}: B's steps`);
    t.same((await reg.listEvents(A, { since: T0 + 1001 })).map((e) => e.stage), ['ack', 'tftp undionly.kpxe'], `${when}: since falls between offer and ack`);
    t.same((await reg.listEvents(A, { limit: 2 })).map((e) => e.stage), ['ack', 'tftp undionly.kpxe'], `${when}: limit keeps the latest steps`);
    t.same((await reg.listEvents(A, { limit: 1 })).map((e) => e.stage), ['tftp undionly.kpxe'], `${when}: limit 1`);
  };
  await check(reg, 'running');
  await reg.close();
  reg = SqliteRegistry.open({ path, logger: silentLogger() });
  t.teardown(() => reg.close());
  await check(reg, 'after a restart');
});

t.test('an ack whose offer was already written, or with no offer, is a row of its own', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-dhcp-tl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const reg = SqliteRegistry.open({ path: join(dir, 'r.db'), logger: silentLogger(), flushInterval: 60_000 });
  t.teardown(() => reg.close());
  await reg.addEvent(ev(A, 1000, 'offer', 'offered'));
  await reg.flush();
  await reg.addEvent(ev(A, 1001, 'ack', 'bound'));
  await reg.addEvent(ev(A, 1002, 'ack', 'bound again (renewal)'));
  t.same((await reg.listEvents(A)).map((e) => `${e.time - T0} ${e.stage} ${e.msg}`), ['1000 offer offered', '1001 ack bound', '1002 ack bound again (renewal)']);
});
