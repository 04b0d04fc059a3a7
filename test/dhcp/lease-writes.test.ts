/**
 * The lease and timeline write path of a boot storm: batches committed by the registry's writer
 * thread (src/registry/sqlite/writer.ts) while the event loop keeps answering from memory. Every
 * accepted write is durable after flush() and after close(), this process does not reload what it
 * wrote itself, and a writer thread that dies leaves the batches to the event loop, nothing lost.
 */
import t from 'tap';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger, silentLogger } from '../../src/log/logger.js';
import { SqliteRegistry } from '../../src/registry/sqlite/registry.js';

const dir = mkdtempSync(join(tmpdir(), 'pvd-dhcp-writes-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const mac = (i: number) => `52:54:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`.toUpperCase();
const expires = Date.now() + 3600_000;
/** What a DHCP exchange writes: the lease, its offer and ack on the timeline, a sighting. */
async function dora(reg: SqliteRegistry, i: number): Promise<void> {
  const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  await reg.recordUnknown(mac(i), null, 'dhcp');
  await reg.addEvent({ time: Date.now(), nodeid: mac(i), source: 'dhcp', stage: 'offer', msg: `offered ${address}`, ok: true, addr: address });
  await reg.putLease({ hwaddr: mac(i), address, expires, state: 'bound', hostname: null, clientId: null, uuid: null });
  await reg.addEvent({ time: Date.now(), nodeid: mac(i), source: 'dhcp', stage: 'ack', msg: `bound ${address}`, ok: true, addr: address });
}

/** Waits (bounded) until the registry's writer thread has started and takes batches. */
async function writerReady(reg: SqliteRegistry): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if ((reg as unknown as { writer: { ready: boolean } | null }).writer?.ready) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

const count = (path: string, sql: string): number => {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare(sql).pluck().get() as number) ?? 0;
  } finally {
    db.close();
  }
};

t.test('a storm of lease writes: committed by the writer thread, durable on flush, not reloaded by us', async (t) => {
  const path = join(dir, 'storm.db');
  const reg = SqliteRegistry.open({ path, logger: silentLogger(), flushInterval: 10, maxQueued: 500 });
  t.teardown(() => reg.close());
  const internals = reg as unknown as { writer: unknown; reload(v: number): void };
  let reloads = 0;
  const reload = internals.reload.bind(reg);
  internals.reload = (v: number) => {
    reloads++;
    reload(v);
  };
  await dora(reg, 0);
  t.ok(await writerReady(reg), 'the first batch starts the writer thread');
  for (let i = 1; i < 6000; i++) {
    await dora(reg, i);
    // Packets arrive over time: let the batches go meanwhile.
    if (i % 500 === 0) await new Promise((r) => setImmediate(r));
  }
  t.equal((await reg.getLease(mac(5999)))?.address, '10.0.23.111', 'answered from memory at once');
  await reg.flush();
  t.equal(count(path, 'SELECT count(*) FROM leases'), 6000, 'every lease is in the database after flush()');
  t.equal(count(path, 'SELECT count(*) + count(prev_time) FROM events'), 12000, 'every offer and ack on the timeline');
  t.ok(count(path, 'SELECT count(*) FROM events') < 6100, 'nearly always one row per exchange (an offer and its ack in two batches take two)');
  t.equal(count(path, 'SELECT count(*) FROM unknown'), 6000);
  t.same((await reg.listEvents(mac(42))).map((e) => e.stage), ['offer', 'ack'], 'both events of the exchange read back');
  t.equal((await reg.listLeases()).length, 6000);
  t.ok(count(path, "SELECT count(*) FROM changes WHERE kind = 'writer'") >= 10, 'the writer thread committed the batches (its marks are in the change log)');
  t.equal(reloads, 0, 'our own batches are skipped in the change log, never a full reload');
  // Another process's change is still seen.
  const cli = SqliteRegistry.open({ path, logger: silentLogger() });
  await cli.putLease({ hwaddr: mac(1), address: '10.9.9.9', expires, state: 'bound' });
  await cli.close();
  t.equal((await reg.getLease(mac(1)))?.address, '10.9.9.9', "another process's lease is seen");
});

t.test('close() with a batch in flight and more queued: nothing lost', async (t) => {
  const path = join(dir, 'close.db');
  const reg = SqliteRegistry.open({ path, logger: silentLogger(), flushInterval: 5, maxQueued: 200 });
  await dora(reg, 0);
  t.ok(await writerReady(reg));
  for (let i = 1; i < 1500; i++) await dora(reg, i);
  await reg.close();
  t.equal(count(path, 'SELECT count(*) FROM leases'), 1500);
  t.equal(count(path, 'SELECT count(*) + count(prev_time) FROM events'), 3000);
});

t.test('a writer thread that dies: its batch is written on the event loop, nothing lost', async (t) => {
  const path = join(dir, 'dead.db');
  const log = memoryLogger();
  const reg = SqliteRegistry.open({ path, logger: log, flushInterval: 5, maxQueued: 100 });
  t.teardown(() => reg.close());
  for (let i = 0; i < 100; i++) await dora(reg, i);
  t.ok(await writerReady(reg));
  for (let i = 100; i < 300; i++) await dora(reg, i);
  const writer = (reg as unknown as { writer: { worker: { terminate(): Promise<number> } } | null }).writer;
  t.ok(writer, 'the writer thread started');
  await writer!.worker.terminate();
  for (let i = 300; i < 600; i++) await dora(reg, i);
  await reg.flush();
  t.equal(count(path, 'SELECT count(*) FROM leases'), 600, 'every lease written');
  t.ok(log.lines.some((l) => /writer thread failed/.test(l.msg)), 'the failure is logged');
});
