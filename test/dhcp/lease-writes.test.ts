/**
 * The lease and timeline write path of a boot storm: batches committed by the registry's writer
 * thread (src/registry/sqlite/writer.ts) while the event loop keeps answering from memory. Every
 * accepted write is durable after flush() and after close(), this process does not reload what it
 * wrote itself, and a writer thread that dies leaves the batches to the event loop, nothing lost.
 */
import t from 'tap';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { memoryLogger, silentLogger } from '../../src/log/logger.js';
import { SqliteRegistry } from '../../src/registry/sqlite/registry.js';
import { waitFor } from '../lib/sleep.js';
import { makeStatedir } from '../lib/statedir.js';

const dir = makeStatedir(t, {}, { prefix: 'pvd-dhcp-writes-' });

const mac = (i: number) => `52:54:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`.toUpperCase();
const expires = Date.now() + 3600_000;
/**
 * What a DHCP exchange writes, in the engine's order: a sighting, the offer on the timeline, the
 * lease, the ack on the timeline; the ACK itself waits for the lease's commit. Many exchanges run at once, as in a boot storm.
 */
async function dora(reg: SqliteRegistry, i: number): Promise<void> {
  const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  await reg.recordUnknown(mac(i), null, 'dhcp');
  await reg.addEvent({ time: Date.now(), nodeid: mac(i), source: 'dhcp', stage: 'offer', msg: `offered ${address}`, ok: true, addr: address });
  const committed = reg.putLease({ hwaddr: mac(i), address, expires, state: 'bound', hostname: null, clientId: null, uuid: null });
  await reg.addEvent({ time: Date.now(), nodeid: mac(i), source: 'dhcp', stage: 'ack', msg: `bound ${address}`, ok: true, addr: address });
  await committed;
}

/** Exchanges `from`..`to`-1, `wave` at a time (each wave's leases share group commits). */
async function storm(reg: SqliteRegistry, from: number, to: number, wave = 100): Promise<void> {
  for (let i = from; i < to; i += wave) await Promise.all(Array.from({ length: Math.min(wave, to - i) }, (_, k) => dora(reg, i + k)));
}

/** Waits (at most 5 s) until the registry's writer thread has started and takes batches. */
function writerReady(reg: SqliteRegistry): Promise<boolean> {
  // Bounded, generous: a thread start is quick, but a CI machine running other test files is slow.
  return waitFor(() => reg.writeStats.writer === 'thread', 30_000);
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
  const reloadsAtOpen = reg.writeStats.reloads;
  await dora(reg, 0);
  t.ok(await writerReady(reg), 'the first batch starts the writer thread');
  await storm(reg, 1, 6000);
  t.equal((await reg.getLease(mac(5999)))?.address, '10.0.23.111', 'answered from memory at once');
  await reg.flush();
  t.equal(count(path, 'SELECT count(*) FROM leases'), 6000, 'every lease is in the database after flush()');
  t.equal(count(path, 'SELECT count(*) + count(prev_time) FROM events'), 12000, 'every offer and ack on the timeline');
  const rows = count(path, 'SELECT count(*) FROM events');
  t.ok(rows < 6100, `${rows} rows: nearly always one row per exchange (an offer and its ack in two batches take two)`);
  t.equal(count(path, 'SELECT count(*) FROM unknown'), 6000);
  t.same((await reg.listEvents(mac(42))).map((e) => e.stage), ['offer', 'ack'], 'both events of the exchange read back');
  t.equal((await reg.listLeases()).length, 6000);
  t.ok(count(path, "SELECT count(*) FROM changes WHERE kind = 'writer'") >= 10, 'the writer thread committed the batches (its marks are in the change log)');
  t.equal(reg.writeStats.reloads - reloadsAtOpen, 0, 'our own batches are skipped in the change log, never a full reload');
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
  await storm(reg, 1, 1000);
  // More exchanges, not waited for: a group commit is in flight and more is queued when close() runs.
  const leases: Array<Promise<void>> = [];
  for (let i = 1000; i < 1500; i++) {
    const address = `10.0.${i >> 8}.${i & 255}`;
    void reg.addEvent({ time: Date.now(), nodeid: mac(i), source: 'dhcp', stage: 'offer', msg: `offered ${address}`, ok: true, addr: address });
    leases.push(reg.putLease({ hwaddr: mac(i), address, expires, state: 'bound' }));
    if (i === 1200) await new Promise((r) => setImmediate(r));
  }
  await reg.close();
  const settled = await Promise.allSettled(leases);
  t.equal(settled.filter((r) => r.status === 'fulfilled').length, 500, 'every lease waited for is reported committed');
  t.equal(count(path, 'SELECT count(*) FROM leases'), 1500);
  t.equal(count(path, 'SELECT count(*) + count(prev_time) FROM events'), 2500);
});

t.test('a writer thread that dies: its batch is written on the event loop, nothing lost', async (t) => {
  const path = join(dir, 'dead.db');
  const log = memoryLogger();
  // The writer thread is killed as a crash would end it: through Node's own handle on the thread.
  const threads: Worker[] = [];
  const started = (w: Worker) => threads.push(w);
  process.on('worker', started);
  t.teardown(() => void process.off('worker', started));
  const reg = SqliteRegistry.open({ path, logger: log, flushInterval: 5, maxQueued: 100 });
  t.teardown(() => reg.close());
  await storm(reg, 0, 100);
  t.ok(await writerReady(reg));
  await storm(reg, 100, 300);
  // The only thread started since this test began: the registry's writer.
  const writer = threads.length === 1 ? threads[0] : undefined;
  t.ok(writer, 'the writer thread started');
  await writer!.terminate();
  await storm(reg, 300, 600);
  await reg.flush();
  t.equal(count(path, 'SELECT count(*) FROM leases'), 600, 'every lease written');
  t.ok(log.lines.some((l) => /writer thread failed/.test(l.msg)), 'the failure is logged');
});
