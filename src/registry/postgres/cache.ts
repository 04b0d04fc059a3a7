/**
 * The in-memory copy of the hot part of a PostgreSQL registry (nodes, groups, leases, declined
 * addresses), kept fresh by LISTEN/NOTIFY: triggers (schema version 3) announce every committed
 * change as `KIND KEY` on channel `provisiond_changes`, whoever made it (this server, another
 * server, a CLI), and the cache re-reads what was named, in batches. No packet waits for the
 * database to be asked who a machine is. Lease notifications (schema version 6) carry the lease
 * itself (`lease HWADDR ROW`, or `-` once gone): those are applied without a read, except for a
 * machine this process wrote itself lately, which is read back as before (see `written`).
 *
 * Read-your-writes: after a write of this process commits, `sync()` sends a token on the same
 * channel; PostgreSQL delivers notifications in commit order, so once the token is back every
 * change committed before it has been applied here. While the listening connection is down the
 * cache says it is not fresh (`fresh()` is null) and readers ask the database; once reconnected it
 * reloads everything (the notifications missed meanwhile are lost).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../../log/logger.js';
import { RegistryIndex } from '../memory-index.js';
import type { DeclinedAddress, GroupRecord, Lease, LeaseChange, NodeRecord } from '../types.js';
import { pgConfig, redactUrl, type PgConnectOptions } from './connection.js';
import { GROUP_COLUMNS, groupFromRow, LEASE_COLUMNS, leaseFromRow, NODE_COLUMNS, nodeFromRow, type GroupRow, type LeaseRow, type NodeRow } from './rows.js';

export const CHANGES_CHANNEL = 'provisiond_changes';

type Kind = 'node' | 'group' | 'lease' | 'declined';
const KINDS: readonly Kind[] = ['node', 'group', 'lease', 'declined'];

export type { LeaseChange } from '../types.js';

/** ms a sync waits for its token before giving up (the write stands; readers may briefly see the old value). */
const SYNC_TIMEOUT_MS = 2000;
const RECONNECT_MS = [250, 500, 1000, 2000, 5000];

export class PgCache {
  index = new RegistryIndex();
  private client: pg.Client | null = null;
  private connected = false;
  private closed = false;
  private readonly id = randomBytes(6).toString('hex');
  private syncSeq = 0;
  private readonly syncWaiters = new Map<number, () => void>();
  private readonly pending: Record<Kind, Set<string>> = { node: new Set(), group: new Set(), lease: new Set(), declined: new Set() };
  /** The lease each pending lease notification carried (null: gone), the latest per machine. */
  private readonly carried = new Map<string, Lease | null>();
  /** Batches of re-reads run one after the other. */
  private chain: Promise<void> = Promise.resolve();
  private scheduled = false;
  /** Local writes put straight into the index, by `KIND KEY`: a re-read started before them must not undo them. */
  private writeSeq = 0;
  private readonly written = new Map<string, number>();
  private readonly listeners = new Set<(c: LeaseChange) => void>();
  private reconnects = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** Changes applied from notifications (tests, metrics). */
  applied = 0;
  /** Leases read back from the database after a notification (the others came with theirs). */
  leasesRead = 0;

  constructor(
    private readonly opts: PgConnectOptions,
    private readonly pool: pg.Pool,
    private readonly log: Logger,
  ) {}

  /** Listens, then loads everything. Throws when the database cannot be reached. */
  async start(): Promise<void> {
    await this.connect();
  }

  /** The index when it is current; null while the listening connection is down. */
  fresh(): RegistryIndex | null {
    return this.connected ? this.index : null;
  }

  /**
   * The index as it was when the listening connection was lost (current while it is up): what a
   * reader falls back on while the database is out of reach.
   */
  lastKnown(): RegistryIndex {
    return this.index;
  }

  /** Tells `fn` of every lease and declined-address change; returns the unsubscribe. */
  onLeaseChange(fn: (c: LeaseChange) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ ...pgConfig({ ...this.opts, applicationName: `${this.opts.applicationName ?? 'provisiond'} listener` }) });
    client.on('notification', (m) => this.notified(m.payload ?? ''));
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, null));
    await client.connect();
    await client.query(`LISTEN ${CHANGES_CHANNEL}`);
    this.client = client;
    await this.reload();
    this.connected = true;
    this.reconnects = 0;
  }

  private lost(client: pg.Client, err: Error | null): void {
    if (this.client !== client) return;
    this.client = null;
    this.connected = false;
    for (const w of this.syncWaiters.values()) w();
    this.syncWaiters.clear();
    client.end().catch(() => {});
    if (this.closed) return;
    this.log.warn({ err: err?.message }, 'registry change notifications lost: reading the database until reconnected');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const ms = RECONNECT_MS[Math.min(this.reconnects++, RECONNECT_MS.length - 1)]!;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect().then(
        () => {
          this.log.info({ database: redactUrl(this.opts.url) }, 'registry change notifications back: cache reloaded');
          this.emit({ kind: 'reload' });
        },
        (err: unknown) => {
          this.client?.end().catch(() => {});
          this.client = null;
          this.log.debug({ err: String(err) }, 'registry change notifications: reconnect failed');
          this.scheduleReconnect();
        },
      );
    }, ms);
    this.reconnectTimer.unref();
  }

  /** Reads everything into a new index. */
  private async reload(): Promise<void> {
    const ix = new RegistryIndex();
    const [nodes, groups, leases, declined] = await Promise.all([
      this.pool.query<NodeRow>(`SELECT ${NODE_COLUMNS} FROM nodes`),
      this.pool.query<GroupRow>(`SELECT ${GROUP_COLUMNS} FROM groups`),
      this.pool.query<LeaseRow>(`SELECT ${LEASE_COLUMNS} FROM leases`),
      this.pool.query<DeclinedAddress>('SELECT address, expires FROM declined'),
    ]);
    for (const r of nodes.rows) ix.putNode(null, nodeFromRow(r), true);
    for (const r of groups.rows) ix.putGroup(groupFromRow(r));
    for (const r of leases.rows) ix.putLease(leaseFromRow(r), true);
    for (const d of declined.rows) ix.putDeclined(d, true);
    this.index = ix;
  }

  private notified(payload: string): void {
    const sp = payload.indexOf(' ');
    const kind = payload.slice(0, sp);
    const key = payload.slice(sp + 1);
    if (kind === 'sync') {
      const [who, n] = key.split(' ');
      if (who !== this.id) return;
      const waiter = this.syncWaiters.get(Number(n));
      if (!waiter) return;
      this.syncWaiters.delete(Number(n));
      // Everything notified before the token is pending now: applied by the next batch.
      void this.batch().then(waiter, waiter);
      return;
    }
    if (!KINDS.includes(kind as Kind)) return;
    if (kind === 'lease') {
      // "HWADDR ROW" (schema 6) or "HWADDR" (before it): the row, when carried, spares a read.
      const sp2 = key.indexOf(' ');
      if (sp2 > 0) {
        const hwaddr = key.slice(0, sp2);
        const rest = key.slice(sp2 + 1);
        let row: Lease | null | undefined;
        try {
          row = rest === '-' ? null : leaseFromRow(JSON.parse(rest) as LeaseRow);
        } catch {
          row = undefined; // not understood: read it back
        }
        if (row === undefined) this.carried.delete(hwaddr);
        else this.carried.set(hwaddr, row);
        this.pending.lease.add(hwaddr);
        this.later();
        return;
      }
      this.carried.delete(key);
    }
    this.pending[kind as Kind].add(key);
    this.later();
  }

  private later(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.batch());
    }
  }

  /** Re-reads what is pending, after the batch before it; resolves once applied. */
  private batch(): Promise<void> {
    this.chain = this.chain.then(() => this.applyPending()).catch((err: unknown) => {
      this.log.warn({ err: String(err) }, 'registry cache refresh failed: reloading');
      return this.reload().catch(() => {
        // The database is out of reach: readers ask it themselves until it is back.
        this.connected = false;
        this.client?.end().catch(() => {});
      });
    });
    return this.chain;
  }

  private async applyPending(): Promise<void> {
    this.scheduled = false;
    const keys = {} as Record<Kind, string[]>;
    let n = 0;
    for (const k of KINDS) {
      keys[k] = [...this.pending[k]];
      this.pending[k].clear();
      n += keys[k].length;
    }
    if (n === 0) return;
    const since = this.writeSeq;
    // Leases another writer made come with their notification; a machine this process wrote and
    // has not seen confirmed by a batch yet is read back, so a notification older than its own
    // write cannot take the index back.
    const carried = new Map<string, Lease | null>();
    const toRead: string[] = [];
    for (const hwaddr of keys.lease) {
      const row = this.carried.get(hwaddr);
      this.carried.delete(hwaddr);
      if (row !== undefined && !this.written.has(`lease ${hwaddr}`)) carried.set(hwaddr, row);
      else toRead.push(hwaddr);
    }
    this.leasesRead += toRead.length;
    this.leasesRead += toRead.length;
    const [nodes, groups, leases, declined] = await Promise.all([
      keys.node.length ? this.pool.query<NodeRow>(`SELECT ${NODE_COLUMNS} FROM nodes WHERE name = ANY($1::text[])`, [keys.node]) : null,
      keys.group.length ? this.pool.query<GroupRow>(`SELECT ${GROUP_COLUMNS} FROM groups WHERE name = ANY($1::text[])`, [keys.group]) : null,
      toRead.length ? this.pool.query<LeaseRow>(`SELECT ${LEASE_COLUMNS} FROM leases WHERE hwaddr = ANY($1::text[])`, [toRead]) : null,
      keys.declined.length ? this.pool.query<DeclinedAddress>('SELECT address, expires FROM declined WHERE address = ANY($1::text[])', [keys.declined]) : null,
    ]);
    const ix = this.index;
    const skip = (kind: Kind, key: string): boolean => {
      const w = this.written.get(`${kind} ${key}`);
      if (w === undefined) return false;
      if (w <= since) this.written.delete(`${kind} ${key}`);
      return w > since;
    };
    const nodeRows = new Map((nodes?.rows ?? []).map((r) => [r.name, nodeFromRow(r)]));
    for (const name of keys.node) {
      if (skip('node', name)) continue;
      const old = ix.nodes.get(name) ?? null;
      const now = nodeRows.get(name);
      if (now) ix.putNode(old, now, true);
      else if (old) ix.removeNode(old);
    }
    const groupRows = new Map((groups?.rows ?? []).map((r) => [r.name, groupFromRow(r)]));
    for (const name of keys.group) {
      if (skip('group', name)) continue;
      const now = groupRows.get(name);
      if (now) ix.putGroup(now);
      else ix.groups.delete(name);
    }
    const leaseRows = new Map((leases?.rows ?? []).map((r) => [r.hwaddr, leaseFromRow(r)]));
    const declinedRows = new Map((declined?.rows ?? []).map((d) => [d.address, d]));
    const changes: LeaseChange[] = [];
    for (const hwaddr of keys.lease) {
      if (skip('lease', hwaddr)) continue;
      const now = carried.has(hwaddr) ? carried.get(hwaddr)! : (leaseRows.get(hwaddr) ?? null);
      if (now) ix.putLease(now, true, false);
      else ix.removeLease(hwaddr);
      changes.push({ kind: 'lease', hwaddr, lease: now });
    }
    for (const address of keys.declined) {
      if (skip('declined', address)) continue;
      const now = declinedRows.get(address) ?? null;
      if (now) ix.putDeclined(now, true);
      else ix.removeDeclined(address);
      changes.push({ kind: 'declined', address, declined: now });
    }
    this.applied += n;
    for (const c of changes) this.emit(c);
  }

  private emit(c: LeaseChange): void {
    for (const fn of this.listeners) {
      try {
        fn(c);
      } catch (err) {
        this.log.warn({ err: String(err) }, 'registry lease change listener failed');
      }
    }
  }

  /** Waits until every change committed before now (this process's included) is in the index. */
  async sync(): Promise<void> {
    if (!this.connected) return;
    const n = ++this.syncSeq;
    const back = new Promise<void>((resolve) => this.syncWaiters.set(n, resolve));
    let timer: NodeJS.Timeout | undefined;
    try {
      await this.pool.query('SELECT pg_notify($1, $2)', [CHANGES_CHANNEL, `sync ${this.id} ${n}`]);
      await Promise.race([back, new Promise<void>((resolve) => (timer = setTimeout(resolve, SYNC_TIMEOUT_MS)))]);
    } catch {
      // The write committed; a reader may see the old value until the notification comes.
    } finally {
      clearTimeout(timer);
      this.syncWaiters.delete(n);
    }
  }

  private mark(kind: Kind, key: string): void {
    this.written.set(`${kind} ${key}`, ++this.writeSeq);
  }

  // ---- this process's writes, put in the index at once (their notifications confirm them) ----

  putLease(lease: Lease): void {
    this.mark('lease', lease.hwaddr);
    // A holder whose lease gave the address up loses it (as the claim's DELETE did).
    const holder = this.index.leasesByAddress.get(lease.address);
    if (holder && holder.hwaddr !== lease.hwaddr) {
      this.mark('lease', holder.hwaddr);
      this.index.removeLease(holder.hwaddr);
    }
    this.mark('declined', lease.address);
    this.index.putLease(lease);
  }

  removeLease(hwaddr: string): void {
    this.mark('lease', hwaddr);
    this.index.removeLease(hwaddr);
  }

  putDeclined(d: DeclinedAddress): void {
    this.mark('declined', d.address);
    this.index.putDeclined(d);
  }

  /** A contact recorded: the node's state, address and time as the UPDATE set them. */
  contact(nodeid: string, state: string | null, addr: string | null, time: number): void {
    const old = this.index.byNodeid.get(nodeid);
    if (!old) return;
    this.mark('node', old.name);
    this.index.putNode(old, { ...old, state: state ?? old.state, lastaddr: addr ?? old.lastaddr, lastcontact: time });
  }

  node(name: string): NodeRecord | null {
    return this.index.nodes.get(name) ?? null;
  }

  group(name: string): GroupRecord | null {
    return this.index.groups.get(name) ?? null;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const c = this.client;
    this.client = null;
    this.connected = false;
    for (const w of this.syncWaiters.values()) w();
    await this.chain.catch(() => {});
    await c?.end().catch(() => {});
  }
}
