/**
 * The writer thread: a worker_thread with its own better-sqlite3 connection that commits the
 * batches of server writes (write-queue.ts), so that the event loop answering DHCP, TFTP and HTTP
 * never waits on SQLite (a batch of 1,000 writes and the WAL checkpoints it triggers take
 * milliseconds). WAL lets the daemon's connection keep reading meanwhile.
 *
 * Its transaction starts and ends with a mark in the change log carrying the token of the store that
 * owns it, so that this process, catching up with the log, skips what it wrote itself (changes.ts).
 * It also makes the checkpoints of the write-ahead log, after a batch is answered (writer-thread.js).
 *
 * The thread's code is writer-thread.js, plain JavaScript beside this module (in src/ and, copied
 * by the build, in dist/), so it starts the same way under any loader.
 */
import { Worker } from 'node:worker_threads';
import { BATCH_SQL } from './statements.js';
import type { BatchSteps } from './write-queue.js';

const THREAD = new URL('./writer-thread.js', import.meta.url);

interface Reply {
  seq?: number;
  ok?: boolean;
  /** The ids of the batch's two marks in the change log. */
  marks?: [number, number];
  message?: string;
  code?: string;
  fatal?: string;
  ready?: boolean;
  /** Frames in the write-ahead log after the thread's last checkpoint. */
  wal?: number;
}

/** An error of the writer thread's SQLite, with its code (SQLITE_BUSY...) for describeDbError. */
export class WriterError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

export interface BatchWriterOptions {
  path: string;
  busyTimeout: number;
  /** SQLite `synchronous` of the thread's connection: FULL syncs the log at every commit. */
  synchronous: 'FULL' | 'NORMAL';
  /** Marks this store's batches in the change log. */
  token: string;
  /** Called once when the thread is gone for good (failed to open the database, crashed). */
  onDead(err: Error): void;
  /** Called once the thread has opened its connection: from then on, it makes the checkpoints. */
  onReady?(): void;
  /** After each of the thread's checkpoints: the frames the write-ahead log holds. */
  onCheckpoint?(walFrames: number): void;
}

/** One batch at a time, in order; `run` resolves when it committed, rejects when it rolled back. */
export class BatchWriter {
  private readonly worker: Worker;
  private seq = 0;
  private pending: { seq: number; resolve(marks: [number, number]): void; reject(err: Error): void } | null = null;
  private dead: Error | null = null;
  private closing = false;
  /** The thread has opened its connection (until then the store writes on the event loop). */
  private started = false;


  constructor(private readonly opts: BatchWriterOptions) {
    this.worker = new Worker(THREAD, {
      // Plain JavaScript needs none of the process's loaders or flags (under tap: its TypeScript
      // loader and coverage hooks, which made the thread take seconds to start on a loaded machine).
      execArgv: [],
      workerData: { path: opts.path, busyTimeout: opts.busyTimeout, synchronous: opts.synchronous, token: opts.token, sql: BATCH_SQL },
    });
    // Idle, the thread does not keep the process alive (a command that forgot to close must not hang
    // on it); a batch or a close under way does.
    this.worker.unref();
    this.worker.on('message', (m: Reply) => this.onMessage(m));
    this.worker.on('error', (err) => this.die(err));
    this.worker.on('exit', (code) => this.die(new Error(`registry writer thread exited (code ${code})`)));
  }

  /** Ready for batches: started, not dead, not closing. */
  get ready(): boolean {
    return this.started && this.dead === null && !this.closing;
  }

  /**
   * Commits a batch; resolves to the ids of its marks in the change log (first, last). `checkpoint`:
   * checkpoint after it even if the last checkpoint is recent. `synchronous`: this batch's sync level,
   * if not the connection's.
   */
  run(steps: BatchSteps, checkpoint = false, synchronous?: 'FULL' | 'NORMAL'): Promise<[number, number]> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.pending) return Promise.reject(new Error('registry writer: a batch is already running'));
    const seq = ++this.seq;
    return new Promise<[number, number]>((resolve, reject) => {
      this.pending = { seq, resolve, reject };
      this.worker.ref();
      this.worker.postMessage({ seq, steps, checkpoint, synchronous });
    });
  }

  private onMessage(m: Reply): void {
    if (m.fatal !== undefined) return this.die(new WriterError(m.fatal, m.code));
    if (m.ready) {
      this.started = true;
      this.opts.onReady?.();
      return;
    }
    if (m.wal !== undefined) {
      this.opts.onCheckpoint?.(m.wal);
      return;
    }
    const p = this.pending;
    if (m.seq === undefined || !p || p.seq !== m.seq) return;
    this.pending = null;
    this.worker.unref();
    if (m.ok) p.resolve(m.marks ?? [NaN, NaN]);
    else p.reject(new WriterError(m.message ?? 'unknown error', m.code));
  }

  private die(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    const p = this.pending;
    this.pending = null;
    p?.reject(err);
    if (!this.closing) this.opts.onDead(err);
  }

  /** Closes the thread's connection (after the batch running, if any) and waits for it to end. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.dead) return;
    const exited = new Promise<void>((r) => this.worker.once('exit', () => r()));
    this.worker.ref();
    this.worker.postMessage({ close: true });
    await exited;
  }
}
