/**
 * The connection pool and the write discipline of the PostgreSQL registry. Reads ask the database,
 * unless the store keeps the hot tables in memory (option `cache`, cache.ts: fresh by
 * LISTEN/NOTIFY, what the daemon opens).
 *
 * Acknowledged means durable: a write resolves only once its transaction committed (synchronous_commit
 * on, see connection.ts). PostgreSQL groups the WAL flushes of concurrent commits by itself (group
 * commit), so many DHCP claims in flight share fsyncs without a queue of our own.
 */
import pg from 'pg';
import type { Logger } from '../../log/logger.js';
import { NodeNotFoundError } from '../../util/errors.js';
import { RegistryConflictError, RegistryUnavailableError } from '../errors.js';
import { checkName, checkNodeid } from '../validate.js';
import { createPool, describePgError, pgConfig, redactUrl, type PgConnectOptions } from './connection.js';
import type { PgCache } from './cache.js';
import type { ClusterMember } from './cluster.js';
import { migratePg } from './migrations.js';
import { NODE_COLUMNS, nodeFromRow, type NodeRow } from './rows.js';
import type { RegistryIndex } from '../memory-index.js';

/** How long reads go straight to memory once the database was found out of reach, before trying it again (ms). */
const UNREACHABLE_RETRY_MS = 1000;
const UNREACHABLE_LOG_MS = 10_000;
/**
 * The daemon's liveness probe: one `SELECT 1` on a connection of its own every PROBE_EVERY_MS; no
 * answer within PROBE_DEADLINE_MS and the database is out of reach. It is what notices a database
 * host that vanished without closing its connections (a cut cable: no reset, queries just hang).
 */
export const PROBE_EVERY_MS = 1000;
export const PROBE_DEADLINE_MS = 2000;

export interface PgRegistryOptions extends PgConnectOptions {
  logger: Logger;
  /** Timeline events older than this many days are pruned (default 90). */
  eventRetentionDays?: number;
  /**
   * Keep nodes, groups, leases and declined addresses in memory, fresh by LISTEN/NOTIFY (cache.ts):
   * the daemon's hot lookups. Off (every read asks the database) for the CLI's short runs.
   */
  cache?: boolean;
}

/** A registry change, for whoever keeps a copy (the multi-server notifications will hook here). */
export interface RegistryChange {
  kind: 'node' | 'group' | 'lease' | 'declined';
  key: string;
}

export type Db = pg.Pool | pg.PoolClient;

/** Whether the database answers; when not, since when (ms) and why. */
export interface DatabaseState {
  reachable: boolean;
  since: number | null;
  reason: string | null;
}

export class PgCore {
  readonly where: string;
  private closed = false;
  /** Writes in flight, so that flush() and close() wait for them. */
  private readonly inflight = new Set<Promise<unknown>>();
  /** The last write of each key (a hardware address): writes of one key commit in the order made. */
  private readonly chains = new Map<string, Promise<unknown>>();
  private pruneTimer: NodeJS.Timeout | null = null;
  readonly retentionMs: number;
  /** Called after each committed change (no-op for now; see RegistryChange). */
  onChange: (change: RegistryChange) => void = () => {};
  /** The in-memory copy of the hot tables (option `cache`), or null: reads ask the database. */
  protected cache: PgCache | null = null;
  /** This server's membership of the servers sharing the database (joinCluster), or null. */
  protected member: ClusterMember | null = null;
  /** The connections lent out to a query or a transaction now: ended at once when an outage begins. */
  private readonly lent = new Set<pg.PoolClient>();
  /** Connections being waited for: failed at once when an outage begins. */
  private readonly waiting = new Set<(err: Error) => void>();
  private probeClient: pg.Client | null = null;
  private probeTimer: NodeJS.Timeout | null = null;
  /** Whether the liveness probe runs (the daemon): while it does, writes fail at once during an outage. */
  private probing = false;
  private readonly connectOpts: PgConnectOptions;
  /** Until when hot reads skip the database, found out of reach (performance.now()). */
  private unreachableUntil = -Infinity;
  private lastUnreachableLog = -Infinity;

  protected constructor(
    readonly pool: pg.Pool,
    readonly url: string,
    readonly log: Logger,
    opts: PgRegistryOptions,
  ) {
    this.where = redactUrl(url);
    this.connectOpts = opts;
    this.retentionMs = (opts.eventRetentionDays ?? 90) * 86_400_000;
  }

  /** Opens the pool, checks the connection and migrates (or checks) the schema. */
  protected static async connect(opts: PgRegistryOptions): Promise<{ pool: pg.Pool; from: number; to: number }> {
    const pool = createPool(opts);
    try {
      const client = await pool.connect();
      try {
        const { from, to } = await migratePg(client, redactUrl(opts.url));
        return { pool, from, to };
      } finally {
        client.release();
      }
    } catch (err) {
      await pool.end().catch(() => {});
      throw describePgError(opts.url, 'opening', err);
    }
  }

  /** Prunes old timeline events now (on the leader only when servers share the database). */
  protected pruneNow(): void {
    this.prune?.();
  }

  private prune: (() => void) | null = null;

  protected startUpkeep(pruneAtOnce = true): void {
    const prune = (): void => {
      const sql = 'DELETE FROM events WHERE time < $1';
      const params = [Date.now() - this.retentionMs];
      // Several servers: singleton work, the leader's alone, fenced by its generation.
      const m = this.member;
      const run = m ? (m.isLeader ? m.fenced('pruning old timeline events', (c) => c.query(sql, params)) : null) : this.pool.query(sql, params);
      if (run === null) return;
      void this.track(run).catch((err: unknown) => this.log.warn({ err: String(err) }, 'pruning old timeline events failed: will retry'));
    };
    this.prune = prune;
    if (pruneAtOnce) prune();
    this.pruneTimer = setInterval(prune, 3_600_000);
    this.pruneTimer.unref();
  }

  protected assertOpen(): void {
    if (this.closed) throw new RegistryUnavailableError(`registry database ${this.where} is closed`);
  }

  /** Keeps `p` in flight until it settles. */
  protected track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const done = (): void => {
      this.inflight.delete(p);
    };
    p.then(done, done);
    return p;
  }

  /**
   * A hot read (a node, its group, a lease): from the cache while it is fresh; else from the
   * database; and while the database is out of reach, from the cache as it was when the database
   * went away, so that a server keeps answering the machines it knows (DHCP renewals, iPXE
   * scripts). Nothing is written from it: writes still fail until the database is back.
   */
  protected async hot<T>(what: string, fromIndex: (ix: RegistryIndex) => T, fromDb: () => Promise<T>): Promise<T> {
    const ix = this.cache?.fresh();
    if (ix) return fromIndex(ix);
    const known = this.cache?.lastKnown() ?? null;
    if (known && performance.now() < this.unreachableUntil) return fromIndex(known);
    try {
      return await fromDb();
    } catch (err) {
      if (!known || !(err instanceof RegistryUnavailableError) || !err.unreachable) throw err;
      const now = performance.now();
      this.unreachableUntil = now + UNREACHABLE_RETRY_MS;
      if (now - this.lastUnreachableLog >= UNREACHABLE_LOG_MS) {
        this.lastUnreachableLog = now;
        this.log.warn({ err: err.message }, `${what}: the database is out of reach: answered from memory, as of when it went away`);
      }
      return fromIndex(known);
    }
  }

  /** Whether the database answered last time it was asked: /healthz says so. */
  databaseState(): DatabaseState {
    return this.outage ? { reachable: false, since: this.outage.since, reason: this.outage.reason } : { reachable: true, since: null, reason: null };
  }

  private outage: { since: number; reason: string } | null = null;

  /** Notes how a round trip to the database ended: an outage begins (logged) or ends (logged). */
  private reached(err: unknown): unknown {
    if (err instanceof RegistryUnavailableError && err.unreachable) {
      if (!this.outage) {
        this.outage = { since: Date.now(), reason: err.message };
        this.log.error({ database: redactUrl(this.url), err: err.message }, 'registry database out of reach: known machines are answered from memory, new leases and every write wait');
        if (this.probing) this.abandonInFlight(err);
      }
    } else if (this.outage && (err === null || !(err instanceof RegistryUnavailableError))) {
      this.log.info({ database: redactUrl(this.url), seconds: Math.round((Date.now() - this.outage.since) / 1000) }, 'registry database reachable again');
      this.outage = null;
    }
    return err;
  }

  /** A query outside any transaction, errors described. */
  protected async q<R extends pg.QueryResultRow>(what: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    this.assertOpen();
    const run = async (): Promise<pg.QueryResult<R>> => {
      const client = await this.lend(what);
      let broken: unknown;
      try {
        const result = await client.query<R>(sql, params);
        this.reached(null);
        return result;
      } catch (err) {
        broken = err;
        throw this.reached(describePgError(this.url, what, err));
      } finally {
        this.giveBack(client, broken);
      }
    };
    return this.track(run());
  }

  /**
   * A connection of the pool for `what`. While the probe finds the database out of reach it fails at
   * once, and a wait for a connection in progress when an outage begins fails then: a write does not
   * wait the connection timeout to learn what the probe already knows.
   */
  private async lend(what: string): Promise<pg.PoolClient> {
    if (this.probing && this.outage) {
      throw new RegistryUnavailableError(`${what}: registry database ${this.where} is unreachable (since ${new Date(this.outage.since).toISOString()}: ${this.outage.reason})`, { unreachable: true });
    }
    let fail!: (err: Error) => void;
    const abandoned = new Promise<never>((_, reject) => (fail = reject));
    this.waiting.add(fail);
    const connecting = this.pool.connect();
    try {
      const client = await Promise.race([connecting, abandoned]);
      this.lent.add(client);
      return client;
    } catch (err) {
      // A connection that arrives after we gave up goes straight back.
      connecting.then((c) => c.release(), () => {});
      throw this.reached(describePgError(this.url, what, err));
    } finally {
      this.waiting.delete(fail);
    }
  }

  private giveBack(client: pg.PoolClient, broken: unknown): void {
    if (!this.lent.delete(client)) return;
    client.release(broken instanceof Error ? broken : undefined);
  }

  /**
   * An outage began: the queries in flight may never be answered (a vanished host sends no reset),
   * so their connections are ended (their transactions roll back on the server, or never reached
   * it) and the waits for a connection fail.
   */
  private abandonInFlight(err: Error): void {
    for (const fail of [...this.waiting]) fail(err);
    for (const client of [...this.lent]) {
      this.lent.delete(client);
      // release(err) ends the connection (with a query in flight, at once) and drops it from the pool.
      client.release(err);
    }
  }

  /** Starts the liveness probe (the daemon; see PROBE_EVERY_MS). */
  protected startProbe(): void {
    if (this.probing) return;
    this.probing = true;
    const tick = async (): Promise<void> => {
      this.probeTimer = null;
      if (this.closed) return;
      await this.probeOnce();
      if (!this.closed && this.probing) {
        this.probeTimer = setTimeout(() => void tick(), PROBE_EVERY_MS);
        this.probeTimer.unref();
      }
    };
    void tick();
  }

  private async probeOnce(): Promise<void> {
    try {
      if (!this.probeClient) {
        const c = new pg.Client({ ...pgConfig(this.connectOpts), connectionTimeoutMillis: PROBE_DEADLINE_MS, query_timeout: PROBE_DEADLINE_MS, application_name: 'provisiond probe' });
        c.on('error', () => {});
        this.probeClient = c;
        await c.connect();
      }
      await this.probeClient.query('SELECT 1');
      this.reached(null);
    } catch (err) {
      const c = this.probeClient;
      this.probeClient = null;
      void c?.end().catch(() => {});
      const e = describePgError(this.url, 'probing', err);
      // Whatever the probe met (no answer in time, a refused or reset connection), the database is out of reach.
      this.reached(e instanceof RegistryUnavailableError && e.unreachable ? e : new RegistryUnavailableError(e.message, { cause: err, unreachable: true }));
    }
  }

  private stopProbe(): void {
    this.probing = false;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = null;
    void this.probeClient?.end().catch(() => {});
    this.probeClient = null;
  }

  /**
   * Runs `fn` in one transaction; committed before it resolves, rolled back when it throws. With
   * the cache on, it resolves once the cache has the change too (`sync`), unless the caller puts
   * what it wrote in the cache itself (`sync` false).
   */
  protected tx<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>, sync = true): Promise<T> {
    this.assertOpen();
    const run = async (): Promise<T> => {
      const result = await this.txOnce(what, fn);
      if (sync && this.cache) await this.cache.sync();
      return result;
    };
    return this.track(run());
  }

  private async txOnce<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.lend(what);
    let broken: unknown;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      this.reached(null);
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: unknown) => (broken = e));
      throw this.reached(describePgError(this.url, what, err));
    } finally {
      this.giveBack(client, broken);
    }
  }

  /** Runs `fn` after the previous write of `key` settled: a release never overtakes its binding. */
  protected serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = this.track(prev.then(fn, fn));
    const tail = next.catch(() => {});
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return next;
  }

  /** Waits for every write made so far. */
  protected async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  protected async closeCore(): Promise<void> {
    if (this.closed) return;
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.stopProbe();
    await this.member?.stop();
    await this.drain();
    this.closed = true;
    await this.cache?.close();
    await this.pool.end();
  }

  // ---- shared lookups ----

  protected async nodeWhere(db: Db, where: string, params: unknown[], lock = false): Promise<ReturnType<typeof nodeFromRow> | null> {
    const { rows } = await db.query<NodeRow>(`SELECT ${NODE_COLUMNS} FROM nodes WHERE ${where}${lock ? ' FOR UPDATE' : ''}`, params);
    return rows[0] ? nodeFromRow(rows[0]) : null;
  }

  /** The node of `name` (locked for the transaction), or a NodeNotFoundError. */
  protected async mustNode(c: pg.PoolClient, name: string) {
    const node = await this.nodeWhere(c, 'name = $1', [name], true);
    if (!node) throw new NodeNotFoundError(`no node named ${JSON.stringify(name)}`);
    return node;
  }

  /** Refuses a name, hardware address or fixed address another node has (same messages as SQLite). */
  protected async assertFree(c: Db, what: { name?: string; nodeid?: string; ipaddr?: string | null }, except?: string): Promise<void> {
    if (what.name !== undefined) {
      checkName(what.name, 'node name');
      const other = await this.nodeWhere(c, 'name = $1', [what.name]);
      if (other && other.name !== except) throw new RegistryConflictError(`node name ${what.name} is already taken (by ${other.nodeid})`);
    }
    if (what.nodeid !== undefined) {
      const nodeid = checkNodeid(what.nodeid);
      const other = await this.nodeWhere(c, 'nodeid = $1', [nodeid]);
      if (other && other.name !== except) throw new RegistryConflictError(`hardware address ${nodeid} is already node ${other.name}`);
    }
    if (what.ipaddr) {
      const other = await this.nodeWhere(c, 'ipaddr = $1', [what.ipaddr]);
      if (other && other.name !== except) throw new RegistryConflictError(`address ${what.ipaddr} is already the fixed address of node ${other.name}`);
    }
  }
}
