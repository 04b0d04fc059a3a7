/**
 * The RegistryStore of the PostgreSQL backend: nodes (nodes.ts), auto-registration
 * (auto-register.ts), the admin tables (admin.ts), and here groups, unknown machines, leases,
 * declined addresses and the timeline.
 *
 * A lease is an atomic claim: `leases.address` is unique, so of two servers claiming one address
 * for two machines, one commits and the other gets a LeaseConflictError (nothing written). A holder
 * whose lease is released, expired or declined gives the address up to the claim, in the same
 * transaction.
 */
import { isIPv4 } from 'node:net';
import { NodeNotFoundError } from '../../util/errors.js';
import { parseMac } from '../../util/mac.js';
import { LeaseConflictError, RegistryValueError } from '../errors.js';
import type { ClusterStatus, DeclinedAddress, VnfsImageHolder, VnfsImagePublication, VnfsImageRecord, GroupRecord, GroupUpdate, Lease, RegistryStore, TimelineEvent, UnknownNode } from '../types.js';
import { checkGroupUpdate, checkName, checkNodeid, mergeAttrs } from '../validate.js';
import type { RegistryArchive, RegistryRestore } from '../archive.js';
import { PgArchive } from './archive.js';
import { PgCache, type LeaseChange } from './cache.js';
import { ClusterMember, clusterStatus, type ServerIdentity } from './cluster.js';
import { describePgError } from './connection.js';
import { PgImages } from './images.js';
import type { PgRegistryOptions } from './core.js';
import { eventFromRow, GROUP_COLUMNS, groupFromRow, groupParams, LEASE_COLUMNS, leaseFromRow, leaseParams, type EventRow, type GroupRow, type LeaseRow } from './rows.js';

/** A row of provisiond_claim_lease (schema 5): the outcome and, when refused, the lease in the way. */
interface ClaimRow {
  outcome: 'ok' | 'taken' | 'held';
  o_hwaddr: string | null;
  o_address: string | null;
  o_expires: number | null;
  o_state: string | null;
  o_hostname: string | null;
  o_client_id: string | null;
  o_uuid: string | null;
}
export type { PgRegistryOptions } from './core.js';

export class PgRegistry extends PgArchive implements RegistryStore, RegistryArchive, RegistryRestore {
  /** Connects to `opts.url`, creating or upgrading the schema. */
  static async open(opts: PgRegistryOptions): Promise<PgRegistry> {
    const { pool, from, to } = await PgArchive.connect(opts);
    const reg = new PgRegistry(pool, opts.url, opts.logger, opts);
    reg.images = new PgImages((what, sql, params) => reg.q(what, sql, params), (what, fn, sync) => reg.tx(what, fn, sync), opts, opts.logger);
    if (opts.cache) {
      const cache = new PgCache(opts, pool, opts.logger);
      try {
        await cache.start();
      } catch (err) {
        await cache.close();
        await pool.end().catch(() => {});
        throw describePgError(opts.url, 'listening for changes', err);
      }
      reg.cache = cache;
    }
    if (from !== to) opts.logger.info({ database: reg.where, from, to }, from === 0 ? 'registry database created' : 'registry database schema upgraded');
    // The daemon (cache on) joins the servers of the database: pruning is then the leader's.
    reg.startUpkeep(!opts.cache);
    if (opts.cache) reg.startProbe();
    return reg;
  }

  // ---- groups ----

  async getGroup(name: string): Promise<GroupRecord | null> {
    return this.hot(
      'reading a group',
      (ix) => ix.groups.get(name) ?? null,
      async () => {
        const { rows } = await this.q<GroupRow>('reading a group', `SELECT ${GROUP_COLUMNS} FROM groups WHERE name = $1`, [name]);
        return rows[0] ? groupFromRow(rows[0]) : null;
      },
    );
  }

  async listGroups(): Promise<GroupRecord[]> {
    return (await this.q<GroupRow>('listing groups', `SELECT ${GROUP_COLUMNS} FROM groups ORDER BY name`)).rows.map(groupFromRow);
  }

  async updateGroup(name: string, update: GroupUpdate): Promise<GroupRecord> {
    checkName(name, 'group name');
    checkGroupUpdate(update);
    return this.tx(`updating group ${name}`, async (c) => {
      await c.query('INSERT INTO groups (name) VALUES ($1) ON CONFLICT (name) DO NOTHING', [name]);
      const { rows } = await c.query<GroupRow>(`SELECT ${GROUP_COLUMNS} FROM groups WHERE name = $1 FOR UPDATE`, [name]);
      const old = groupFromRow(rows[0]!);
      const next: GroupRecord = { ...old, attrs: mergeAttrs(old.attrs, update.attrs) };
      for (const k of ['vnfs', 'enabled', 'debug', 'boot', 'desc'] as const) {
        if (update[k] !== undefined) (next as unknown as Record<string, unknown>)[k] = update[k];
      }
      await c.query(`UPDATE groups SET (${GROUP_COLUMNS}) = ($1, $2, $3, $4, $5, $6, $7) WHERE name = $1`, groupParams(next));
      return next;
    });
  }

  /** Deletes the group's settings; its nodes keep the group name and fall back to the defaults. */
  async deleteGroup(name: string): Promise<void> {
    const { rowCount } = await this.q(`deleting group ${name}`, 'DELETE FROM groups WHERE name = $1', [name]);
    if (!rowCount) throw new NodeNotFoundError(`no group named ${JSON.stringify(name)}`);
    await this.cache?.sync();
  }

  // ---- unknown machines ----

  async recordUnknown(nodeid: string, addr: string | null, via: string): Promise<void> {
    const mac = parseMac(nodeid);
    if (mac === null) return;
    const now = Date.now();
    await this.serial(`unknown ${mac}`, () =>
      this.q(
        'recording an unknown machine',
        `INSERT INTO unknown (nodeid, lastaddr, via, firstseen, lastseen, count)
         SELECT $1, $2, $3, $4, $4, 1 WHERE NOT EXISTS (SELECT 1 FROM nodes WHERE nodeid = $1)
         ON CONFLICT (nodeid) DO UPDATE SET lastaddr = coalesce(EXCLUDED.lastaddr, unknown.lastaddr), via = EXCLUDED.via,
           lastseen = EXCLUDED.lastseen, count = unknown.count + 1`,
        [mac, addr, via, now],
      ),
    );
  }

  async listUnknown(): Promise<UnknownNode[]> {
    const { rows } = await this.q<UnknownNode>(
      'listing unknown machines',
      'SELECT nodeid, lastaddr, via, firstseen, lastseen, count FROM unknown WHERE nodeid NOT IN (SELECT nodeid FROM nodes) ORDER BY lastseen DESC',
    );
    return rows;
  }

  // ---- leases ----

  async getLease(hwaddr: string): Promise<Lease | null> {
    const mac = parseMac(hwaddr);
    if (mac === null) return null;
    return this.hot(
      'reading a lease',
      (ix) => ix.leases.get(mac) ?? null,
      async () => {
        const { rows } = await this.q<LeaseRow>('reading a lease', `SELECT ${LEASE_COLUMNS} FROM leases WHERE hwaddr = $1`, [mac]);
        return rows[0] ? leaseFromRow(rows[0]) : null;
      },
    );
  }

  /** The lease of `address`; none while the address is declined (its holder no longer has it). */
  async getLeaseByAddress(address: string): Promise<Lease | null> {
    const ix = this.cache?.fresh();
    if (ix) return ix.leasesByAddress.get(address) ?? null;
    const { rows } = await this.q<LeaseRow>(
      'reading a lease',
      `SELECT ${LEASE_COLUMNS} FROM leases WHERE address = $1 AND NOT EXISTS (SELECT 1 FROM declined WHERE address = $1)`,
      [address],
    );
    return rows[0] ? leaseFromRow(rows[0]) : null;
  }

  async listLeases(): Promise<Lease[]> {
    return (await this.q<LeaseRow>('listing leases', `SELECT ${LEASE_COLUMNS} FROM leases ORDER BY hwaddr`)).rows.map(leaseFromRow);
  }

  /**
   * Claims `lease.address` for `lease.hwaddr`; resolves once committed. Throws LeaseConflictError
   * when another machine holds the address with a live lease (here or on another server).
   */
  /** What the cache applied from change notifications, and how many leases it read back (tests, metrics); null without a cache. */
  cacheStats(): { applied: number; leasesRead: number } | null {
    return this.cache ? { applied: this.cache.applied, leasesRead: this.cache.leasesRead } : null;
  }

  async putLease(lease: Lease, opts: { exclusive?: boolean } = {}): Promise<void> {
    this.assertOpen();
    const hwaddr = checkNodeid(lease.hwaddr);
    if (!isIPv4(lease.address)) throw new RegistryValueError(`lease of ${hwaddr}: ${JSON.stringify(lease.address)} is not an IPv4 address`);
    const row = leaseParams({ ...lease, hwaddr });
    // One statement (schema 5's provisiond_claim_lease), its own transaction: one round trip.
    const { rows } = await this.serial(`lease ${hwaddr}`, () =>
      this.q<ClaimRow>(`writing the lease of ${hwaddr}`, 'SELECT * FROM provisiond_claim_lease($1, $2, $3, $4, $5, $6, $7, $8, $9)', [...row, opts.exclusive === true, Date.now()]),
    );
    const r = rows[0];
    if (r && r.outcome !== 'ok') {
      const held = r.o_hwaddr === null ? null : leaseFromRow({ hwaddr: r.o_hwaddr, address: r.o_address!, expires: r.o_expires!, state: r.o_state!, hostname: r.o_hostname, client_id: r.o_client_id, uuid: r.o_uuid });
      // Exclusive: the machine holds another address with a live binding (made by another server meanwhile); that binding stands.
      if (r.outcome === 'held') throw new LeaseConflictError(lease.address, hwaddr, `lease of ${hwaddr}: it holds ${held?.address ?? 'another address'} with a live lease`, { lease: held });
      const holder = held?.hwaddr ?? null;
      throw new LeaseConflictError(lease.address, holder, `lease of ${hwaddr}: address ${lease.address} is held by ${holder ?? 'another machine'}`, { lease: held });
    }
    // In the cache at once: a DHCPACK's lease is what the next lookup by address finds.
    this.cache?.putLease({ ...lease, hwaddr });
  }

  async deleteLease(hwaddr: string): Promise<void> {
    const mac = checkNodeid(hwaddr);
    await this.serial(`lease ${mac}`, () => this.q(`deleting the lease of ${mac}`, 'DELETE FROM leases WHERE hwaddr = $1', [mac]));
    this.cache?.removeLease(mac);
  }

  async listDeclined(): Promise<DeclinedAddress[]> {
    return (await this.q<DeclinedAddress>('listing declined addresses', 'SELECT address, expires FROM declined ORDER BY address')).rows;
  }

  async putDeclined(declined: DeclinedAddress): Promise<void> {
    const { address, expires } = declined;
    if (!isIPv4(address)) throw new RegistryValueError(`declined address ${JSON.stringify(address)} is not an IPv4 address`);
    await this.q(
      `declining ${address}`,
      'INSERT INTO declined (address, expires) VALUES ($1, $2) ON CONFLICT (address) DO UPDATE SET expires = EXCLUDED.expires',
      [address, expires],
    );
    this.cache?.putDeclined({ address, expires });
  }

  async clusterStatus(): Promise<ClusterStatus> {
    this.assertOpen();
    try {
      return await clusterStatus(this.pool);
    } catch (err) {
      throw describePgError(this.url, 'reading the servers', err);
    }
  }

  /** Registers this server and takes part in the leader election (cluster.ts). */
  async joinCluster(me: ServerIdentity): Promise<ClusterMember> {
    this.assertOpen();
    if (this.member) return this.member;
    const member = new ClusterMember(this.pool, me, this.log);
    try {
      await member.start();
    } catch (err) {
      throw describePgError(this.url, 'joining the servers of the database', err);
    }
    this.member = member;
    // The first pruning ran before there was a leader: once leading, prune (fenced).
    member.onLeadership = (leader) => {
      if (leader) this.pruneNow();
    };
    if (member.isLeader) this.pruneNow();
    return member;
  }

  // ---- vnfs images across servers (images.ts) ----

  private images!: PgImages;

  publishImage(image: VnfsImagePublication): Promise<VnfsImageRecord> {
    return this.images.publish(image);
  }

  getImage(vnfs: string): Promise<VnfsImageRecord | null> {
    return this.images.get(vnfs);
  }

  listImages(): Promise<VnfsImageRecord[]> {
    return this.images.list();
  }

  forgetImage(vnfs: string): Promise<boolean> {
    return this.images.forget(vnfs);
  }

  holdImage(vnfs: string, sha256: string, server: string): Promise<void> {
    return this.images.hold(vnfs, sha256, server);
  }

  imageHolders(vnfs: string): Promise<VnfsImageHolder[]> {
    return this.images.holders(vnfs);
  }

  clusterSecret(): Promise<string> {
    return this.images.secret();
  }

  onImagePublished(fn: (vnfs: string | null) => void): () => void {
    return this.images.onPublished(fn);
  }

  /** Tells `fn` of every lease and declined-address change, made here or elsewhere (needs the cache); returns the unsubscribe. */
  onLeaseChange(fn: (c: LeaseChange) => void): () => void {
    return this.cache ? this.cache.onLeaseChange(fn) : () => {};
  }

  // ---- timeline ----

  async addEvent(event: TimelineEvent): Promise<void> {
    const nodeid = parseMac(event.nodeid) ?? event.nodeid;
    await this.q('recording a timeline event', 'INSERT INTO events (time, nodeid, source, stage, msg, ok, addr) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      event.time,
      nodeid,
      event.source,
      event.stage,
      event.msg,
      event.ok,
      event.addr ?? null,
    ]);
  }

  async listEvents(nodeid: string, options: { since?: number; limit?: number } = {}): Promise<TimelineEvent[]> {
    const mac = parseMac(nodeid) ?? nodeid;
    // The latest `limit` events since `since`, oldest first.
    const { rows } = await this.q<EventRow>(
      'reading the timeline',
      `SELECT * FROM (SELECT id, time, nodeid, source, stage, msg, ok, addr FROM events WHERE nodeid = $1 AND time >= $2
        ORDER BY time DESC, id DESC LIMIT $3) e ORDER BY time, id`,
      [mac, options.since ?? 0, options.limit ?? null],
    );
    return rows.map(eventFromRow);
  }

  async flush(): Promise<void> {
    await this.drain();
  }

  async close(): Promise<void> {
    await this.registerPending();
    await this.images.close();
    await this.closeCore();
  }
}
