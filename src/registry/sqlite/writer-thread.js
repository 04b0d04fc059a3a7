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
import { parentPort, workerData } from 'node:worker_threads';

/**
 * @typedef {{ path: string, busyTimeout: number, synchronous: 'FULL' | 'NORMAL', token: string, sql: Record<string, string> }} WriterThreadData
 * @typedef {[string, unknown]} Step
 */

/** @param {import('node:worker_threads').MessagePort} port @param {WriterThreadData} w */
function start(port, w) {
  /** @type {import('better-sqlite3').Database} */
  let db;
  /** @type {Record<string, import('better-sqlite3').Statement>} */
  const st = {};
  try {
    db = new Database(w.path, { timeout: w.busyTimeout });
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${w.synchronous}`);
    db.pragma('foreign_keys = ON');
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
  port.on('message', (/** @type {{ close?: boolean, seq: number, steps: Step[] }} */ m) => {
    if (m.close) {
      db.close();
      port.close();
      return;
    }
    try {
      port.postMessage({ seq: m.seq, ok: true, marks: run.immediate(m.steps) });
    } catch (err) {
      const e = /** @type {{ message?: string, code?: string }} */ (err);
      port.postMessage({ seq: m.seq, ok: false, message: String(e?.message), code: e?.code });
    }
  });
  port.postMessage({ ready: true });
}

if (parentPort) start(parentPort, workerData);
