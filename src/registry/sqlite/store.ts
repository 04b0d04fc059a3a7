/**
 * The embedded registry: SQLite through better-sqlite3 in WAL mode. Every node, group and lease is
 * also held in a RegistryIndex so that the per-packet lookups never touch the database; the index is
 * reloaded when another process (the `provisiond node ...` CLI) commits, which SQLite reports through
 * `PRAGMA data_version`. Writes of the servers are batched by a WriteQueue (see write-queue.ts).
 */
import { randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import type { Logger } from '../../log/logger.js';
import { parseMac } from '../../util/mac.js';
import { NodeNotFoundError } from '../../util/errors.js';
import { RegistryConflictError, RegistryUnavailableError } from '../errors.js';
import { RegistryIndex } from '../memory-index.js';
import { checkName, checkNodeid } from '../validate.js';
import { applyChanges, CHANGES_KEPT } from './changes.js';
import { migrate } from './migrations.js';
import { groupFromRow, leaseFromRow, nodeFromRow, prepare, type Statements } from './statements.js';
import { LeaseJournal } from './journal.js';
import { WriteQueue, type BatchSteps } from './write-queue.js';
import { BatchWriter } from './writer.js';

export interface SqliteRegistryOptions {
  /** Database file (its folder is created), or `:memory:`. */
  path: string;
  logger: Logger;
  /** How long to wait for a lock held by another process before giving up, in ms (default 5000). */
  busyTimeout?: number;
  /** How long servers' writes may wait in memory before they are written, in ms (default 50). */
  flushInterval?: number;
  /** Queued writes that trigger an immediate flush (default 1000). */
  maxQueued?: number;
  /**
   * Write the batches of a file database in a thread of their own (writer.ts), started with the
   * first timed batch (default true; false keeps every batch on the event loop; a short-lived command
   * flushes on the event loop at close).
   */
  writerThread?: boolean;
  /** Timeline events older than this many days are pruned (default 90). */
  eventRetentionDays?: number;
  /**
   * Hot lookups (by nodeid, by address, leases) check for other processes' commits at most this
   * often, in ms (default 1): asking SQLite costs ~5 us, more than the lookup itself.
   */
  syncInterval?: number;
  /**
   * What a commit survives (config `dhcp.durability`): `fsync` (default) syncs the write-ahead log at
   * every commit (SQLite `synchronous=FULL`), so a power cut loses nothing committed; `process`
   * leaves it to the kernel (`synchronous=NORMAL`): a crash or `kill -9` of the daemon loses
   * nothing committed, a power cut may lose the last commits.
   */
  durability?: Durability;
  /**
   * Keep the lease journal (journal.ts; the daemon, a file database): a lease, deleted lease or declined
   * address is committed once its line is in the journal (synced with `fsync`), and reaches the tables
   * with the next batch. Off, each is committed by a transaction of its own group commit.
   */
  leaseJournal?: boolean;
  /**
   * Test hook: awaited before every batch is committed (and every group commit of the lease journal
   * is written), so that a test can hold the commit and show that nothing waiting for it (a DHCPACK)
   * leaves before it.
   */
  beforeCommit?: () => Promise<void>;
  /**
   * With the lease journal and `fsync`: group commits are synced on the event loop while their
   * fdatasyncs take less than this many ms (the median of the last 31; default 1, an SSD), else on
   * libuv's thread pool. Tests set 0 to have the thread pool's path.
   */
  journalInlineSyncMs?: number;
  /** Told of every batch committed (or that failed): the seconds its commit took, where it ran (the daemon's metrics). */
  onBatch?: (b: RegistryBatch) => void;
}

/** One batch of the servers' writes, as `onBatch` reports it. */
export interface RegistryBatch {
  ok: boolean;
  seconds: number;
  /** In the writer thread, or on the event loop. */
  thread: boolean;
}

export type Durability = 'fsync' | 'process';

/** What the write path is doing (`SqliteCore.writeStats`), read-only. */
export interface RegistryWriteStats {
  /** Where batches are committed: the writer thread; the event loop while it starts (or stops); the event loop. */
  writer: 'thread' | 'starting' | 'event-loop';
  /** Writes accepted and not yet handed to a commit. */
  queued: number;
  /** Full reloads of the index since open (a catch-up the change log could not describe). */
  reloads: number;
}

/** SQLite's `synchronous` level for a durability setting (WAL mode). */
export function synchronousFor(durability: Durability): 'FULL' | 'NORMAL' {
  return durability === 'process' ? 'NORMAL' : 'FULL';
}

/** Group commits of at most this many leases and declined addresses are committed on the event loop (see commitHere). */
const INLINE_LEASES = 16;
/**
 * ... and at most this many since the write-ahead log last started over: then the writer thread
 * commits alone, and checkpoints after each batch, until it reports a log that started over.
 */
const INLINE_RUN = 200;
/** A log of at most this many frames after a checkpoint has started over since (a few commits' worth). */
const WAL_RESTARTED = 64;
/**
 * With the lease journal and `durability: fsync`, the writer thread's batches are committed without a
 * sync (the journal has the leases on disk already), except at most this many ms apart and whenever
 * someone waits for a batch: journal files are deleted only once a synced commit holds their lines.
 */
const JOURNAL_SYNC_MS = 1000;

/** Someone waiting for the commit of a durable write (a lease). */
interface CommitWaiter {
  resolve(): void;
  reject(err: Error): void;
}

function settle(waiters: CommitWaiter[], err: Error | null): void {
  for (const w of waiters) {
    if (err) w.reject(err);
    else w.resolve();
  }
}

/** The connection, the index and the queue; the RegistryStore methods are in sqlite-registry.ts. */
export class SqliteCore {
  readonly index = new RegistryIndex();
  readonly queue = new WriteQueue();
  readonly st: Statements;
  protected version = -1;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private lastPrune = 0;
  private flushFailing = false;
  private closing = false;
  /** The writer thread, once started; null on the event loop (`:memory:`, off, or after it failed). */
  private writer: BatchWriter | null = null;
  private writerOff: boolean;
  private reloads = 0;
  /** Marks this store's batches in the change log (see changes.ts). */
  readonly token = randomUUID();
  protected lastSync = -Infinity;
  /** Bumped whenever names may have been freed (deletes, renames, other processes' changes). */
  protected generation = 0;
  /** Id of the last entry of the change log this index reflects (-1: reload everything). */
  protected lastChange = -1;
  readonly syncInterval: number;
  readonly flushInterval: number;
  readonly maxQueued: number;
  readonly retentionMs: number;
  private readonly busyTimeout: number;
  /** Catching up with the change log, in one transaction (see catchUp). */
  private readonly applyTx: (seen: { refreshed: number }) => number | null;
  private readonly seenChanges = { refreshed: -1 };
  readonly durability: Durability;
  private readonly beforeCommit: (() => Promise<void>) | undefined;
  private readonly onBatch: ((b: RegistryBatch) => void) | undefined;
  /** Waiting for the commit of what is queued now (durable writes: leases). */
  private queueWaiters: CommitWaiter[] = [];
  /** Waiting for the commit of everything queued now (drain). */
  private fullWaiters: CommitWaiter[] = [];
  /** Waiting for the batch being committed to end (drain with nothing queued). */
  private idleWaiters: CommitWaiter[] = [];
  /** A batch is being committed (from the hook to the commit): one at a time, in order. */
  private flushing = false;
  /** Group commits made here (commitHere) since the write-ahead log last started over. */
  private inlineCommits = 0;
  /** A group commit is scheduled for the end of this turn of the event loop. */
  private commitScheduled = false;
  /** The lease journal (the daemon), or null: leases are committed by group commits of the tables. */
  protected readonly journal: LeaseJournal | null;
  /** The last of the journal's group commits the tables hold. */
  private journalHeld = -1;
  /** ... of which a commit that was not synced (see JOURNAL_SYNC_MS): released at the next synced one. */
  private journalUnsynced = -1;
  /** When the writer thread last made a synced commit (performance.now()). */
  private lastSyncedBatch = 0;

  protected constructor(
    readonly db: Database.Database,
    readonly path: string,
    readonly log: Logger,
    opts: SqliteRegistryOptions,
  ) {
    this.st = prepare(db);
    this.applyTx = db.transaction((seen: { refreshed: number }) => applyChanges(this.st, this.index, this.lastChange, this.token, seen));
    this.flushInterval = opts.flushInterval ?? 50;
    this.maxQueued = opts.maxQueued ?? 1000;
    this.retentionMs = (opts.eventRetentionDays ?? 90) * 86_400_000;
    this.syncInterval = opts.syncInterval ?? 1;
    this.busyTimeout = opts.busyTimeout ?? 5000;
    this.durability = opts.durability ?? 'fsync';
    this.beforeCommit = opts.beforeCommit;
    this.onBatch = opts.onBatch;
    this.writerOff = opts.writerThread === false || path === ':memory:';
    try {
      this.journal =
        opts.leaseJournal && path !== ':memory:'
          ? LeaseJournal.open(db, this.st.batch, { dbPath: path, sync: this.durability === 'fsync', log, beforeWrite: opts.beforeCommit, inlineSyncMs: opts.journalInlineSyncMs })
          : null;
    } catch (err) {
      db.close();
      throw describeDbError(path, 'applying the lease journal', err);
    }
  }

  /** The journal's group commits a batch taken now holds (-1: no journal). */
  private journalCovered(): number {
    return this.journal ? this.journal.written : -1;
  }

  /**
   * A batch that held the journal's group commits up to `seq` is committed; `synced`: with a sync
   * when the durability asks for one (then the journal's files it holds, and those of the unsynced
   * commits before it, are deleted).
   */
  private journalCommitted(seq: number, synced = true): void {
    if (!this.journal) return;
    if (!synced) {
      this.journalUnsynced = Math.max(this.journalUnsynced, seq);
      return;
    }
    const held = Math.max(seq, this.journalUnsynced);
    this.journalUnsynced = -1;
    if (held < 0) return;
    this.journalHeld = Math.max(this.journalHeld, held);
    this.journal.release(held);
  }

  get writeStats(): RegistryWriteStats {
    const writer = this.writer ? (this.writer.ready ? 'thread' : 'starting') : 'event-loop';
    return { writer, queued: this.queue.size, reloads: this.reloads };
  }

  /** Opens (creating and migrating as needed) the database; errors say what is wrong with the file. */
  protected static connect(opts: SqliteRegistryOptions): { db: Database.Database; from: number; to: number } {
    const { path } = opts;
    let db: Database.Database | undefined;
    try {
      if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
      db = new Database(path, { timeout: opts.busyTimeout ?? 5000 });
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${synchronousFor(opts.durability ?? 'fsync')}`);
      db.pragma('foreign_keys = ON');
      const { from, to } = migrate(db, path);
      return { db, from, to };
    } catch (err) {
      db?.close();
      throw describeDbError(path, 'opening', err);
    }
  }

  // ---- consistency with other processes ----

  /** Reloads the index if another connection committed since we last looked. */
  protected sync(): void {
    this.assertOpen();
    this.lastSync = performance.now();
    const v = this.st.dataVersion.get() as number;
    if (v === this.version) return;
    // Reads never wait for the write lock: what is queued is laid over the refreshed index instead
    // of being flushed first.
    if (this.catchUp(v)) this.queue.applyTo(this.index);
  }

  /**
   * Refreshes what other processes changed (see changes.ts), or everything when that is cheaper.
   * False when no entry of the index was touched: most version changes are our own writer thread's
   * commits (every batch), whose writes the index has already, and re-laying the queue over an
   * untouched index would be wasted work (hundreds of lease copies per batch in a boot storm).
   */
  private catchUp(version: number): boolean {
    this.generation++;
    const seen = this.seenChanges;
    seen.refreshed = -1;
    const last = this.lastChange < 0 ? null : this.applyTx(seen);
    if (last === null) {
      this.reload(version);
      return true;
    }
    this.lastChange = last;
    this.version = version;
    return seen.refreshed !== 0;
  }

  /** sync for the per-packet paths: at most once per `syncInterval` ms. */
  protected syncHot(): void {
    if (performance.now() - this.lastSync >= this.syncInterval) this.sync();
    else this.assertOpen();
  }

  private reload(version: number): void {
    this.reloads++;
    const load = this.db.transaction(() => {
      this.index.clear();
      const nodeAttrs = new Map<number, Record<string, string>>();
      for (const a of this.st.allNodeAttrs.all()) {
        let attrs = nodeAttrs.get(a.node_id);
        if (!attrs) nodeAttrs.set(a.node_id, (attrs = {}));
        attrs[a.key] = a.value;
      }
      for (const r of this.st.allNodes.all()) this.index.putNode(null, nodeFromRow(r, nodeAttrs.get(r.id) ?? {}), true);
      const groupAttrs = new Map<string, Record<string, string>>();
      for (const a of this.st.allGroupAttrs.all()) {
        let attrs = groupAttrs.get(a.grp);
        if (!attrs) groupAttrs.set(a.grp, (attrs = {}));
        attrs[a.key] = a.value;
      }
      for (const r of this.st.allGroups.all()) this.index.putGroup(groupFromRow(r, groupAttrs.get(r.name) ?? {}));
      for (const r of this.st.allLeases.all()) this.index.putLease(leaseFromRow(r));
      for (const r of this.st.allDeclined.all()) this.index.putDeclined(r, true);
      this.lastChange = this.st.lastChange.get() ?? 0;
    });
    load();
    this.version = version;
  }

  /**
   * Runs `fn` in one IMMEDIATE transaction (the write lock taken at once), after catching up with
   * other processes. The queued server writes go into the same transaction unless a batch is with the
   * writer thread (they must follow it); the queue is cleared once it committed (a rolled-back
   * transaction leaves them queued).
   */
  protected write<T>(what: string, fn: () => T): T {
    this.assertOpen();
    let seen = this.lastChange;
    const withQueue = !this.queue.inFlight;
    const covered = withQueue ? this.journalCovered() : -1;
    const tx = this.db.transaction(() => {
      const v = this.st.dataVersion.get() as number;
      if (v !== this.version && this.catchUp(v)) this.queue.applyTo(this.index);
      if (withQueue) this.queue.writeTo(this.st);
      if (covered >= 0) this.st.batch.journalApplied.run(covered);
      const result = fn();
      // Our own changes are in the index already: skip them when catching up later.
      seen = this.st.lastChange.get() ?? seen;
      return result;
    });
    let result: T;
    try {
      result = tx.immediate();
    } catch (err) {
      // The transaction may have updated the index before it was rolled back: rebuild it all.
      this.version = -1;
      this.lastChange = -1;
      this.lastSync = -Infinity;
      throw describeDbError(this.path, what, err);
    }
    this.lastChange = seen;
    this.lastSync = performance.now();
    if (withQueue) {
      this.queue.clear();
      this.journalCommitted(covered);
      // The durable writes that were queued are committed with this transaction.
      const waiters = [...this.queueWaiters, ...this.fullWaiters];
      this.queueWaiters = [];
      this.fullWaiters = [];
      settle(waiters, null);
    }
    return result;
  }

  // ---- batching ----

  /** A server write was queued: write the batch now if it is big, else soon. Never throws. */
  protected queued(): void {
    if (this.queue.size >= this.maxQueued && !this.flushFailing) void this.flushBatch(true);
    else this.arm();
  }

  /**
   * A durable write (a lease) was queued: resolves once it is committed, rejects when its batch
   * failed (the write stays queued and is retried, but whoever waits, a DHCPACK, must not go out).
   * Group commit: the leases queued in this turn of the event loop are committed together at its
   * end, or, while a batch is being committed, in the next one, started as soon as that commit
   * finished. Other writes (timeline, contacts) ride along only once they are due (flushInterval).
   */
  protected queuedDurable(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queueWaiters.push({ resolve, reject });
      this.schedule();
    });
  }

  /**
   * A durable write that is not a lease (a node's change of state, its boot report): resolves once
   * everything queued with it is committed, in the next batch, started at once.
   */
  protected queuedDurableAll(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.fullWaiters.push({ resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.commitScheduled) return;
    this.commitScheduled = true;
    setImmediate(this.scheduledCommit);
  }

  private readonly scheduledCommit = (): void => {
    this.commitScheduled = false;
    void this.flushBatch(false);
  };

  private arm(): void {
    if (this.timer !== null || this.closed || this.closing) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flushBatch(true);
    }, this.flushInterval);
    this.timer.unref();
  }

  /**
   * Commits a batch (in the writer thread when there is one): everything queued when `full`, when
   * someone drains, or when the other writes are due; else the leases only. On failure (a lock held
   * by an admin's long command, a full disk) keeps it queued, logs, fails the durable writes that
   * waited for it, and retries on the timer (or with the next durable write), so that a packet
   * handler never waits on a lock twice. Then starts the next batch at once if writes wait for it.
   */
  private async flushBatch(full: boolean): Promise<void> {
    if (this.flushing || this.closed || this.queue.size === 0 || this.queue.inFlight) return;
    this.flushing = true;
    try {
      if (this.beforeCommit) await this.beforeCommit();
      if (this.closed || this.queue.size === 0 || this.queue.inFlight) return;
      const began = performance.now();
      if (this.useWriter(true)) {
        const all = full || this.fullWaiters.length > 0 || this.queue.size >= this.maxQueued || this.queue.otherAge(performance.now()) >= this.flushInterval;
        if (!all && this.commitHere()) {
          this.reportBatch(began, false);
          return;
        }
        await this.sendBatch(!all);
        this.reportBatch(began, true);
        return;
      }
      const waiters = [...this.queueWaiters, ...this.fullWaiters];
      try {
        this.flushQueued();
        this.flushFailing = false;
        this.reportBatch(began, false);
      } catch (err) {
        this.failed(err as Error);
        this.reportBatch(began, false);
        // flushQueued settles the waiters when it commits; it did not.
        this.queueWaiters = this.queueWaiters.filter((w) => !waiters.includes(w));
        this.fullWaiters = this.fullWaiters.filter((w) => !waiters.includes(w));
        settle(waiters, err as Error);
        this.arm();
      }
    } finally {
      this.flushing = false;
      // Drains that waited for this batch: done, or (it failed) waiting for the next full one.
      const idle = this.idleWaiters;
      this.idleWaiters = [];
      if (this.queue.size === 0) settle(idle, null);
      else this.fullWaiters.push(...idle);
      this.next();
    }
  }

  private reportBatch(began: number, thread: boolean): void {
    try {
      this.onBatch?.({ ok: !this.flushFailing, seconds: (performance.now() - began) / 1000, thread });
    } catch {
      // A counter never stops a commit.
    }
  }

  /** After a batch: the next one at once when someone waits for it (group commit), else on the timer. */
  private next(): void {
    if (this.flushing || this.closed || this.queue.inFlight || this.queue.size === 0) return;
    if (this.fullWaiters.length > 0 || (this.queue.size >= this.maxQueued && !this.flushFailing)) void this.flushBatch(true);
    else if (this.queueWaiters.length > 0) void this.flushBatch(false);
    else this.arm();
  }

  private failed(err: Error): void {
    if (!this.flushFailing) this.log.warn({ err: err.message, queued: this.queue.size }, 'writing batched registry updates failed; will retry');
    this.flushFailing = true;
  }

  /**
   * True when batches go to the writer thread, started here if `start` and not yet (file databases
   * only). False while it starts (tens of ms, more on a busy machine): batches are written here
   * meanwhile, so that starting the thread never delays them.
   */
  private useWriter(start: boolean): boolean {
    if (this.writer) return this.writer.ready;
    if (this.writerOff || !start || this.closing || this.closed) return false;
    try {
      this.writer = new BatchWriter({
        path: this.path,
        busyTimeout: this.busyTimeout,
        synchronous: synchronousFor(this.durability),
        token: this.token,
        onDead: (err) => {
          this.log.warn({ err: err.message }, 'registry writer thread failed; writing batches on the event loop');
          this.writer = null;
          this.writerOff = true;
          this.autoCheckpoint(true);
        },
        // The thread checkpoints after its batches; commits here (commitHere) must not.
        onReady: () => this.autoCheckpoint(false),
        onCheckpoint: (walFrames) => {
          if (walFrames <= WAL_RESTARTED) this.inlineCommits = 0;
        },
      });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'registry writer thread not started; writing batches on the event loop');
      this.writerOff = true;
    }
    return false;
  }

  /**
   * A group commit of a few leases, with `durability: process`, is committed here on the event loop
   * rather than by the writer thread: one small transaction without a sync costs the event loop about
   * what handing it over and hearing back does, and it keeps the writer thread off the path of each
   * DHCPACK at a low rate. Two threads on that path meant two more waits for a CPU, and a lock shared
   * with the writer (its message port's, SQLite's) that the event loop waited on whenever the writer
   * was preempted holding it: the stalls behind the p99 at 1,000 DORA/s (docs/design/dhcp.md). Larger
   * batches (a boot storm) still go to the thread. False when the batch is not one of those.
   */
  private commitHere(): boolean {
    if (this.durability !== 'process' || this.queue.leasesQueued > INLINE_LEASES) return false;
    // The thread's checkpoints run beside these commits and cannot let the log start over while they
    // go on (the log would grow without end): after INLINE_RUN of them, the thread commits alone.
    if (this.inlineCommits >= INLINE_RUN) return false;
    this.inlineCommits++;
    const covered = this.journalCovered();
    const steps = this.queue.take(true);
    if (covered >= 0) steps.push(['journalApplied', covered]);
    const waiters = this.queueWaiters;
    this.queueWaiters = [];
    try {
      this.write('writing batched updates', () => {
        for (const [name, arg] of steps) this.st.batch[name].run(arg);
      });
    } catch (err) {
      this.queue.unsent();
      this.failed(err as Error);
      settle(waiters, err as Error);
      this.arm();
      return true;
    }
    this.queue.sent();
    this.journalCommitted(covered);
    this.flushFailing = false;
    settle(waiters, null);
    return true;
  }

  /** SQLite's automatic checkpoint in this process's connection: off while the writer thread makes them. */
  private autoCheckpoint(on: boolean): void {
    try {
      if (!this.closed) this.db.pragma(`wal_autocheckpoint = ${on ? 1000 : 0}`);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'registry: setting the automatic checkpoint failed');
    }
  }

  /**
   * Hands what is queued (the leases only, with `leasesOnly`) to the writer thread; settles who
   * waits for it once it committed or failed.
   */
  private async sendBatch(leasesOnly: boolean): Promise<void> {
    const now = Date.now();
    const upkeep = leasesOnly ? [] : this.upkeep(now);
    const covered = this.journalCovered();
    const steps = [...this.queue.take(leasesOnly), ...upkeep];
    if (covered >= 0) steps.push(['journalApplied', covered]);
    const waiters = this.queueWaiters;
    this.queueWaiters = [];
    const drained = leasesOnly ? [] : this.fullWaiters;
    if (!leasesOnly) this.fullWaiters = [];
    // With the journal, a batch needs its sync (fsync) only when someone waits for it, and now and
    // then for the journal's files to go (JOURNAL_SYNC_MS): the disk's syncs stay the ACKs'.
    const began = performance.now();
    const synced = this.durability !== 'fsync' || !this.journal || drained.length > 0 || began - this.lastSyncedBatch >= JOURNAL_SYNC_MS;
    let marks: [number, number];
    try {
      marks = await this.writer!.run(steps, this.inlineCommits >= INLINE_RUN, synced ? undefined : 'NORMAL');
    } catch (err) {
      this.queue.unsent();
      const e = describeDbError(this.path, 'writing batched updates', err);
      this.failed(e);
      settle(waiters, e);
      settle(drained, e);
      return;
    }
    this.queue.sent();
    if (synced) this.lastSyncedBatch = began;
    this.journalCommitted(covered, synced);
    this.flushFailing = false;
    if (upkeep.length > 1) this.lastPrune = now;
    this.seenOwn(marks);
    settle(waiters, null);
    settle(drained, null);
  }

  /**
   * Our writer thread committed a batch logged between `from` and `to` in the change log. When the
   * index had seen everything up to just before it, and nothing was logged after it, the commit is
   * taken as seen without a catch-up transaction (a group commit per packet in a boot storm would
   * otherwise pay one each): the data version is read first, then the log's end, so that a commit of
   * another process in between shows as a newer log entry and takes the ordinary path.
   */
  private seenOwn([from, to]: [number, number]): void {
    if (this.closed || this.lastChange < 0 || this.lastChange !== from - 1) return;
    try {
      const v = this.st.dataVersion.get() as number;
      if (this.st.lastChange.get() !== to) return;
      this.version = v;
      this.lastChange = to;
    } catch {
      // The ordinary catch-up will run.
    }
  }

  /**
   * Makes every write accepted so far durable: they are in the batch being committed or still
   * queued; a full batch started after this call commits them all (batches commit in order).
   */
  protected async drain(): Promise<void> {
    this.assertOpen();
    if (this.queue.size === 0 && !this.flushing) return;
    await new Promise<void>((resolve, reject) => {
      this.fullWaiters.push({ resolve, reject });
      if (this.queue.size === 0) {
        // Only the batch being committed held them: its end settles this waiter (see next()).
        this.fullWaiters.pop();
        this.idleWaiters.push({ resolve, reject });
        return;
      }
      this.schedule();
    });
  }

  /** Writes what is queued in one transaction, on the event loop. */
  protected flushQueued(): void {
    if (this.queue.size === 0) return;
    const now = Date.now();
    const upkeep = this.upkeep(now);
    this.write('writing batched updates', () => {
      for (const [name, arg] of upkeep) this.st.batch[name].run(arg);
    });
    if (upkeep.length > 1) this.lastPrune = now;
  }

  /** What goes with every batch: the change log cut to CHANGES_KEPT, and hourly the expired events. */
  private upkeep(now: number): BatchSteps {
    const steps: BatchSteps = [['pruneChanges', CHANGES_KEPT]];
    if (now - this.lastPrune > 3_600_000) steps.push(['pruneEvents', now - this.retentionMs]);
    return steps;
  }

  /** Stops the writer thread once what was accepted is written (what it could not write stays queued). */
  protected async closeWriter(): Promise<void> {
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const writer = this.writer;
    if (!writer) return;
    try {
      await this.drain();
    } catch {
      // Left queued: closeCore writes it on the event loop, or says why it cannot.
    } finally {
      this.writer = null;
      this.writerOff = true;
      await writer.close();
    }
  }

  protected closeCore(): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    try {
      this.flushQueued();
    } finally {
      // Its files are deleted when the tables hold every line, synced, else applied at the next open.
      if (this.journal) this.journal.close(this.queue.size === 0 && !this.queue.inFlight && this.syncLog() ? Number.MAX_SAFE_INTEGER : this.journalHeld);
      this.closed = true;
      this.db.close();
      // Whatever could not be written: its waiters must not wait forever.
      const waiters = [...this.queueWaiters, ...this.fullWaiters, ...this.idleWaiters];
      this.queueWaiters = [];
      this.fullWaiters = [];
      this.idleWaiters = [];
      settle(waiters, new RegistryUnavailableError(`registry database ${this.path} closed before the write was committed`));
    }
  }

  /** With `fsync`, syncs the write-ahead log (the writer thread's unsynced commits); false if that failed. */
  private syncLog(): boolean {
    if (this.durability !== 'fsync' || this.journalUnsynced < 0) return true;
    try {
      const fd = openSync(`${this.path}-wal`, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      return true;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'registry: syncing the write-ahead log at close failed; the lease journal is kept');
      return false;
    }
  }

  protected assertOpen(): void {
    if (this.closed) throw new RegistryUnavailableError(`registry database ${this.path} is closed`);
  }

  // ---- shared lookups ----

  /** The node of `name`, or a NodeNotFoundError. */
  protected mustNode(name: string) {
    const node = this.index.nodes.get(name);
    if (!node) throw new NodeNotFoundError(`no node named ${JSON.stringify(name)}`);
    return node;
  }

  /** Canonical nodeid of a trusted-or-not input, or null (never throws: lookups of garbage find nothing). */
  protected canonical(nodeid: string): string | null {
    return this.index.byNodeid.has(nodeid) ? nodeid : parseMac(nodeid);
  }

  protected assertFree(what: { name?: string; nodeid?: string; ipaddr?: string | null }, except?: string): void {
    if (what.name !== undefined) {
      checkName(what.name, 'node name');
      const other = this.index.nodes.get(what.name);
      if (other && other.name !== except) throw new RegistryConflictError(`node name ${what.name} is already taken (by ${other.nodeid})`);
    }
    if (what.nodeid !== undefined) {
      const nodeid = checkNodeid(what.nodeid);
      const other = this.index.byNodeid.get(nodeid);
      if (other && other.name !== except) throw new RegistryConflictError(`hardware address ${nodeid} is already node ${other.name}`);
    }
    if (what.ipaddr) {
      const other = this.index.byIpaddr.get(what.ipaddr);
      if (other && other.name !== except) throw new RegistryConflictError(`address ${what.ipaddr} is already the fixed address of node ${other.name}`);
    }
  }
}

/** Turns SQLite's error codes into messages an admin can act on. ProvisiondErrors pass through. */
export function describeDbError(path: string, what: string, err: unknown): Error {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return err as Error;
  const where = `${what}: registry database ${path}`;
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new RegistryUnavailableError(`${where} is locked by another process (gave up waiting)`, { cause: err });
  }
  if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
    return new RegistryUnavailableError(`${where} is corrupted or not an SQLite database (${(err as Error).message})`, { cause: err });
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_PERM') {
    return new RegistryUnavailableError(`${where} cannot be used: ${(err as Error).message}`, { cause: err });
  }
  if (code.startsWith('SQLITE_CONSTRAINT')) return new RegistryConflictError(`${what}: ${(err as Error).message}`, { cause: err });
  return new RegistryUnavailableError(`${where}: ${(err as Error).message}`, { cause: err });
}
