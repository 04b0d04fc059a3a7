/**
 * The daemon's lease journal: what a DHCPACK waits for with the SQLite registry. A lease, a deleted
 * lease or a declined address is appended to a journal file next to the database
 * (`PATH.leases.N`), one line per group commit (everything accepted in one turn of the event loop,
 * or while the previous group was being synced), and the promise of each settles once that line is
 * written (`durability: process`: in the kernel, a `kill -9` of the daemon loses nothing) or written
 * and synced with fdatasync (`fsync`: a power cut loses nothing). This is what Kea's memfile does
 * (one line per lease in a CSV file before the ACK), and one write of a few hundred bytes costs the
 * event loop far less than an SQLite transaction (about ten writes to the log and six locks).
 *
 * The same writes go to the tables with the servers' other writes, batched (write-queue.ts); each
 * batch also records the last group commit it holds (`lease_journal.applied`), and journal files
 * whose lines it holds are deleted. At open, lines the tables do not hold (a daemon killed before its
 * batch) are applied first. Only the daemon keeps a journal; commands read the tables, where a lease
 * shows up with the next batch (within `flushInterval`).
 */
import { closeSync, fdatasync, fdatasyncSync, fsyncSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type Database from 'better-sqlite3';
import type { Logger } from '../../log/logger.js';
import type { DeclinedAddress, Lease } from '../types.js';
import { leaseParams, type BatchStatement } from './statements.js';

/**
 * The size of a journal file, written with zeros when it is created: a line then overwrites blocks
 * the file already has, so that syncing it syncs the data only, not the file's size in the
 * filesystem's own journal (about a third less per fdatasync here). A group commit larger than this
 * gets a file of its own, as large as it needs.
 */
const FILE_BYTES = 1 << 20;

/**
 * A sync is made on the event loop itself while syncs take less than this (ms, the median of the
 * last SYNC_WINDOW): on an SSD an fdatasync takes a tenth of a millisecond or two, less than handing
 * it to libuv's thread pool and being woken for its answer (two threads woken per group commit, each
 * a wait for a CPU on a busy machine). A slower disk (a spinning one: several ms) has its syncs made
 * on the thread pool, so that the event loop goes on meanwhile (TFTP, HTTP, the next requests).
 */
const INLINE_SYNC_MS = 1;
/**
 * Syncs whose median decides where the next are made, wherever they were made (a sync on the thread
 * pool is timed from its request to its answer). A median, not an average: a few slow syncs while
 * SQLite checkpoints on the same disk must not move the syncs of a fast disk (a moving average
 * moved them back and forth 14 to 22 times in 5 s at 1,000 DORA/s here, each time for a hundred
 * syncs, with the wake-ups that costs).
 */
const SYNC_WINDOW = 31;
/** At most one move of the syncs logged at info level per this many ms. */
const MOVE_LOG_MS = 60_000;

/** The lease steps of BATCH_SQL a journal line holds, by name, each with its rows. */
const LINE_STEPS = ['deleteLeases', 'leases', 'deleteDeclined', 'declined'] as const satisfies readonly BatchStatement[];

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

export interface LeaseJournalOptions {
  /** The database file: the journal files are `PATH.leases.N` beside it. */
  dbPath: string;
  /** `fsync`: each group commit is synced (fdatasync) before it is acknowledged. */
  sync: boolean;
  log: Logger;
  /** Test hook: awaited before each group commit is written (see SqliteRegistryOptions.beforeCommit). */
  beforeWrite?: () => Promise<void>;
  /** Syncs slower than this (ms, the median of the last ones) are made on libuv's thread pool (default INLINE_SYNC_MS; 0: always). */
  inlineSyncMs?: number;
}

/** One journal file: its number and the last group commit written to it. */
interface JournalFile {
  n: number;
  last: number;
}

export class LeaseJournal {
  private fd = -1;
  private file: JournalFile;
  private bytes = 0;
  /** Files no longer written to, deleted once the tables hold their last line. */
  private sealed: JournalFile[] = [];
  private leases = new Map<string, Lease | null>();
  private declined = new Map<string, DeclinedAddress | null>();
  private waiters: Waiter[] = [];
  private scheduled = false;
  private writing: Promise<void> | null = null;
  private closed = false;
  private failing = false;
  /** The last SYNC_WINDOW syncs' times, ms, a ring (see INLINE_SYNC_MS); `syncTimed` of them are real. */
  private readonly syncTimes = new Float64Array(SYNC_WINDOW);
  private syncTimed = 0;
  /** Where group commits are synced now (see INLINE_SYNC_MS): decided after each sync. */
  private place: 'event-loop' | 'thread-pool' = 'event-loop';
  /** Moves between the two places so far, and when one was last logged at info level. */
  private moves = 0;
  private movedLogAt = -Infinity;
  /** The last group commit written (and synced when `sync`): what a batch taken now holds. */
  private seq: number;
  private readonly dir: string;
  private readonly prefix: string;

  /**
   * Applies the lines of journal files left by a daemon that did not close (killed, crashed, power
   * cut) that the tables do not hold yet, deletes those files, and starts a new journal.
   */
  static open(db: Database.Database, run: Record<BatchStatement, Database.Statement>, opts: LeaseJournalOptions): LeaseJournal {
    const dir = dirname(opts.dbPath);
    const prefix = `${basename(opts.dbPath)}.leases.`;
    const files = listFiles(dir, prefix);
    const applied = (db.prepare('SELECT applied FROM lease_journal').pluck().get() as number | undefined) ?? 0;
    let last = applied;
    if (files.length > 0) {
      let lines = 0;
      let skipped = 0;
      const apply = db.transaction(() => {
        files.forEach((n, i) => {
          const text = readFileSync(join(dir, prefix + n), 'utf8');
          // The lines end where the zeros the file was created with begin.
          const end = text.indexOf('\0');
          const parts = (end < 0 ? text : text.slice(0, end)).split('\n');
          parts.forEach((line, j) => {
            if (line === '') return;
            let rec: Record<string, unknown> & { seq: number };
            try {
              rec = JSON.parse(line) as typeof rec;
              if (typeof rec.seq !== 'number') throw new Error('no seq');
            } catch {
              // The last line of the newest file, cut short by the crash, was never acknowledged.
              if (!(i === files.length - 1 && j === parts.length - 1)) skipped++;
              return;
            }
            last = Math.max(last, rec.seq);
            if (rec.seq <= applied) return;
            lines++;
            for (const step of LINE_STEPS) if (Array.isArray(rec[step])) run[step].run(JSON.stringify(rec[step]));
          });
        });
        run.journalApplied.run(last);
      });
      apply.immediate();
      for (const n of files) unlinkSync(join(dir, prefix + n));
      if (opts.sync) syncDir(dir);
      if (skipped > 0) opts.log.warn({ journal: join(dir, prefix + '*'), skipped }, 'lease journal: unreadable lines skipped');
      opts.log.info({ journal: join(dir, prefix + '*'), applied: lines }, 'lease journal: writes of the last run applied');
    }
    return new LeaseJournal(dir, prefix, (files.at(-1) ?? 0) + 1, last, opts);
  }

  private constructor(dir: string, prefix: string, n: number, seq: number, private readonly opts: LeaseJournalOptions) {
    this.dir = dir;
    this.prefix = prefix;
    this.seq = seq;
    this.file = { n, last: seq };
    this.start(n);
  }

  /** The last group commit written: a batch taken now holds it and every one before. */
  get written(): number {
    return this.seq;
  }

  /** A lease written (null: deleted); resolves once it is in the journal, rejects if it could not be written. */
  lease(hwaddr: string, lease: Lease | null): Promise<void> {
    this.leases.set(hwaddr, lease);
    return this.wait();
  }

  /** A declined address (null: lifted), as `lease`. */
  decline(address: string, declined: DeclinedAddress | null): Promise<void> {
    this.declined.set(address, declined);
    return this.wait();
  }

  /**
   * The tables hold every group commit up to `seq` (a batch taken when `written` was `seq` committed):
   * journal files with nothing newer are deleted.
   */
  release(seq: number): void {
    const keep: JournalFile[] = [];
    for (const f of this.sealed) {
      if (f.last > seq) {
        keep.push(f);
        continue;
      }
      try {
        unlinkSync(this.path(f.n));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') keep.push(f);
      }
    }
    this.sealed = keep;
  }

  /**
   * Waits for the group commit being written, then writes what is left at once (one try: what a
   * failing disk refuses stays for the tables, and its waiters were told).
   */
  async idle(): Promise<void> {
    if (this.writing) await this.writing.catch(() => undefined);
    if (this.leases.size + this.declined.size > 0 && !this.writing) await this.flush().catch(() => undefined);
    if (this.writing) await this.writing.catch(() => undefined);
  }

  /**
   * Closes the journal (after `idle`); deletes its files when the tables hold `seq`, every group
   * commit (a clean close), else leaves them for the next open.
   */
  close(heldByTables: number): void {
    if (this.closed) return;
    this.closed = true;
    this.stop();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(new Error('lease journal closed before the write was committed'));
    if (heldByTables < this.seq) return;
    this.sealed.push(this.file);
    this.release(this.seq);
  }

  private wait(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('lease journal closed'));
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      if (!this.scheduled && !this.writing) {
        this.scheduled = true;
        setImmediate(this.scheduledFlush);
      }
    });
  }

  private readonly scheduledFlush = (): void => {
    this.scheduled = false;
    if (!this.writing) this.flush().catch(() => undefined);
  };

  /** Writes (and syncs) one group commit: everything accepted since the last; then the next, if any waits. */
  private flush(): Promise<void> {
    const p = this.writeGroup().finally(() => {
      this.writing = null;
      if (this.waiters.length > 0 && !this.closed && !this.scheduled) {
        this.scheduled = true;
        setImmediate(this.scheduledFlush);
      }
    });
    this.writing = p;
    return p;
  }

  /** fdatasync of the journal file: on the event loop while the disk is fast, else on the thread pool (INLINE_SYNC_MS). */
  private async sync(): Promise<void> {
    const t0 = performance.now();
    if (this.place === 'event-loop') fdatasyncSync(this.fd);
    else {
      const fd = this.fd;
      await new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
    }
    this.timed(performance.now() - t0);
  }

  /** One more sync's time: the place of the next ones is the median's (logged when it changes). */
  private timed(ms: number): void {
    this.syncTimes[this.syncTimed++ % SYNC_WINDOW] = ms;
    const median = this.syncMedian();
    const place = median < (this.opts.inlineSyncMs ?? INLINE_SYNC_MS) ? 'event-loop' : 'thread-pool';
    if (place === this.place) return;
    this.place = place;
    this.moves++;
    // A disk busy with someone else's writes for a while moves them now and then: said once a
    // minute at most (with how many moves), the others at debug level.
    const now = performance.now();
    const level = now - this.movedLogAt >= MOVE_LOG_MS ? 'info' : 'debug';
    if (level === 'info') this.movedLogAt = now;
    this.opts.log[level]({ journal: this.path(this.file.n), syncMs: Number(median.toFixed(3)), place, moves: this.moves }, `lease journal: syncs now made on the ${place === 'event-loop' ? 'event loop (the disk is fast)' : 'thread pool (the disk is slow)'}`);
  }

  /** The median of the last syncs' times, ms (0 before the first). */
  private syncMedian(): number {
    const n = Math.min(this.syncTimed, SYNC_WINDOW);
    if (n === 0) return 0;
    const sorted = this.syncTimes.slice(0, n).sort();
    return n % 2 ? sorted[n >> 1]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  }

  private async writeGroup(): Promise<void> {
    if (this.opts.beforeWrite) await this.opts.beforeWrite();
    const leases = this.leases;
    const declined = this.declined;
    const waiters = this.waiters;
    if (leases.size + declined.size === 0) {
      settle(waiters, null);
      this.waiters = [];
      return;
    }
    this.leases = new Map();
    this.declined = new Map();
    this.waiters = [];
    const seq = this.seq + 1;
    try {
      if (this.closed) throw new Error('lease journal closed');
      const line = Buffer.from(JSON.stringify(lineOf(seq, leases, declined)) + '\n');
      if (this.fd >= 0 && this.bytes > 0 && this.bytes + line.length > FILE_BYTES) this.seal();
      if (this.fd < 0) this.start(this.file.n + 1);
      for (let off = 0; off < line.length; ) off += writeSync(this.fd, line, off, line.length - off, this.bytes + off);
      this.bytes += line.length;
      if (this.opts.sync) await this.sync();
    } catch (err) {
      // Not acknowledged: the writes stay for the next group commit (the client asks again), and a
      // line cut short must not run into the next one: that goes to a new file.
      for (const [k, v] of this.leases) leases.set(k, v);
      for (const [k, v] of this.declined) declined.set(k, v);
      this.leases = leases;
      this.declined = declined;
      const e = new Error(`lease journal ${this.path(this.file.n)}: ${(err as Error).message}`, { cause: err });
      if (!this.failing) this.opts.log.warn({ err: e.message }, 'lease journal: writing failed; leases are not acknowledged until it works');
      this.failing = true;
      this.seal();
      settle(waiters, e);
      return;
    }
    this.failing = false;
    this.seq = seq;
    this.file.last = seq;
    settle(waiters, null);
  }

  private path(n: number): string {
    return join(this.dir, this.prefix + n);
  }

  /**
   * Creates journal file `n`, FILE_BYTES of zeros (synced, with its name in the folder, with `sync`).
   * Next to the database, which is the daemon's: a file left by a crash was applied at open.
   */
  private start(n: number): void {
    this.file = { n, last: this.seq };
    this.bytes = 0;
    let fd = -1;
    try {
      fd = openSync(this.path(n), 'w');
      const zeros = Buffer.alloc(64 << 10);
      for (let off = 0; off < FILE_BYTES; off += zeros.length) writeSync(fd, zeros, 0, zeros.length, off);
      if (this.opts.sync) {
        fdatasyncSync(fd);
        syncDir(this.dir);
      }
    } catch (err) {
      if (fd >= 0) closeSync(fd);
      throw err;
    }
    this.fd = fd;
  }

  /** No more lines go to the current file (it is kept until the tables hold them). */
  private seal(): void {
    this.stop();
    this.sealed.push(this.file);
  }

  private stop(): void {
    if (this.fd < 0) return;
    try {
      if (this.opts.sync) fdatasyncSync(this.fd);
    } catch {
      // What was acknowledged was synced already.
    }
    closeSync(this.fd);
    this.fd = -1;
  }
}

function lineOf(seq: number, leases: Map<string, Lease | null>, declined: Map<string, DeclinedAddress | null>): Record<string, unknown> {
  const line: Record<string, unknown> = { seq };
  const deletes: string[] = [];
  const upserts: unknown[] = [];
  for (const [hwaddr, l] of leases) {
    if (l === null) deletes.push(hwaddr);
    else upserts.push(leaseParams(l));
  }
  if (deletes.length) line.deleteLeases = deletes;
  if (upserts.length) line.leases = upserts;
  const lifted: string[] = [];
  const added: Array<[string, number]> = [];
  for (const [address, d] of declined) {
    if (d === null) lifted.push(address);
    else added.push([d.address, d.expires]);
  }
  if (lifted.length) line.deleteDeclined = lifted;
  if (added.length) line.declined = added;
  return line;
}

function settle(waiters: Waiter[], err: Error | null): void {
  for (const w of waiters) {
    if (err) w.reject(err);
    else w.resolve();
  }
}

/** The numbers of the journal files in `dir`, in order. */
function listFiles(dir: string, prefix: string): number[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((f) => f.startsWith(prefix) && /^\d+$/.test(f.slice(prefix.length)))
    .map((f) => Number(f.slice(prefix.length)))
    .sort((a, b) => a - b);
}

/** Syncs a folder, so that a file created or deleted in it stays so after a power cut. */
function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
