// @ts-check
/**
 * The body of the registry writer thread (writer.ts starts it as a worker_thread): its own
 * better-sqlite3 connection that commits one batch of steps per message, inside a transaction that
 * starts and ends with a mark in the change log carrying the owning store's token.
 *
 * Plain JavaScript, so the same file runs whatever loader the process has: from dist/ (the build
 * copies it), under tap's TypeScript loader, and under tsx, whose loader a worker does not inherit
 * on Node 20. The statements come from statements.ts through workerData.
 */
import Database from 'better-sqlite3';
import { getPriority, setPriority } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';

/**
 * @typedef {{ path: string, busyTimeout: number, synchronous: 'FULL' | 'NORMAL', token: string, sql: Record<string, string> }} WriterThreadData
 * @typedef {[string, unknown]} Step
 */

/** At most one checkpoint per this many ms (see checkpoint()). */
const CHECKPOINT_MS = 250;

/**
 * This thread's nice value above the process's. Its batches are not what a DHCP reply waits for
 * (the lease journal is), so when the CPUs are busy the event loop goes first: 5 higher, the thread
 * gets about a quarter of a CPU it contends for with the event loop, never none (Linux's nice is per
 * thread; raising it needs no privilege).
 */
const NICER = 5;

/** @param {import('node:worker_threads').MessagePort} port @param {WriterThreadData} w */
function start(port, w) {
  try {
    // pid 0: on Linux, this thread only (setpriority(2), NOTES); it started at the process's value.
    setPriority(0, Math.min(19, getPriority(0) + NICER));
  } catch {
    // Not allowed here (a seccomp profile...): the thread runs at the process's priority.
  }
  /** @type {import('better-sqlite3').Database} */
  let db;
  /** @type {Record<string, import('better-sqlite3').Statement>} */
  const st = {};
  try {
    db = new Database(w.path, { timeout: w.busyTimeout });
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${w.synchronous}`);
    db.pragma('foreign_keys = ON');
    // Checkpoints are this thread's, after a batch's answer (see checkpoint below), never inside a commit.
    db.pragma('wal_autocheckpoint = 0');
    for (const [k, sql] of Object.entries(w.sql)) st[k] = db.prepare(sql);
  } catch (err) {
    const e = /** @type {{ message?: string, code?: string }} */ (err);
    port.postMessage({ fatal: String(e?.message), code: e?.code });
    throw err;
  }
  const run = db.transaction(/** @param {Step[]} steps */ (steps) => {
    const from = st.mark.run(w.token).lastInsertRowid;
    for (const [name, arg] of steps) st[name].run(arg);
    const to = st.mark.run(w.token).lastInsertRowid;
    return [Number(from), Number(to)];
  });
  let synchronous = w.synchronous;
  port.on('message', (/** @type {{ close?: boolean, seq: number, steps: Step[], checkpoint?: boolean, synchronous?: 'FULL' | 'NORMAL' }} */ m) => {
    if (m.close) {
      db.close();
      port.close();
      return;
    }
    try {
      // A batch may ask for a sync level of its own (the store's lease journal, see store.ts).
      const want = m.synchronous ?? w.synchronous;
      if (want !== synchronous) {
        db.pragma(`synchronous = ${want}`);
        synchronous = want;
      }
      port.postMessage({ seq: m.seq, ok: true, marks: run.immediate(m.steps) });
    } catch (err) {
      const e = /** @type {{ message?: string, code?: string }} */ (err);
      port.postMessage({ seq: m.seq, ok: false, message: String(e?.message), code: e?.code });
    }
    checkpoint(m.checkpoint === true);
  });
  /**
   * Copies the write-ahead log back into the database at most every CHECKPOINT_MS (or when the store
   * asks), once the batch's answer is out. SQLite's automatic checkpoint ran inside the commit that
   * crossed 1,000 pages, with two or three fsyncs, and every DHCPACK waiting for that commit waited
   * for them too: at 1,000 DORA/s that was about 1 % of the ACKs, a few ms each, the p99
   * (docs/design/dhcp.md). PASSIVE never waits for the other connection's readers or writer. The
   * frames left in the log go back to the store: it commits beside this thread only while the log
   * starts over now and then (store.ts, commitHere).
   */
  let lastCheckpoint = 0;
  /** @param {boolean} asked */
  function checkpoint(asked) {
    const now = performance.now();
    if (!asked && now - lastCheckpoint < CHECKPOINT_MS) return;
    lastCheckpoint = now;
    try {
      const [r] = /** @type {Array<{ log: number }>} */ (db.pragma('wal_checkpoint(PASSIVE)'));
      if (r) port.postMessage({ wal: r.log });
    } catch {
      // Tried again after the next batch; SQLite copes with a long log meanwhile.
    }
  }
  port.postMessage({ ready: true });
}

if (parentPort) start(parentPort, workerData);
