/**
 * The RegistryStore of the SQLite backend: nodes (nodes.ts), auto-registration (auto-register.ts),
 * and here groups, unknown machines, leases, declined addresses and the timeline. Reads come from the in-memory index;
 * server writes are batched (see write-queue.ts).
 */
import { isIPv4 } from 'node:net';
import { NodeNotFoundError } from '../../util/errors.js';
import { parseMac } from '../../util/mac.js';
import { RegistryValueError } from '../errors.js';
import type { VnfsImageHolder, VnfsImagePublication, VnfsImageRecord, DeclinedAddress, GroupRecord, GroupUpdate, Lease, RegistryStore, TimelineEvent, UnknownNode } from '../types.js';
import { checkGroupUpdate, checkName, checkNodeid, mergeAttrs } from '../validate.js';
import { allAudit, allTasks, type RegistryArchive, type RegistryDump } from '../archive.js';
import { eventsFromRow, groupParams, type EventRow } from './statements.js';
import { SqliteCore, type SqliteRegistryOptions } from './store.js';
import { SqliteAdmin } from './admin.js';
import { LocalImages } from '../local-images.js';

export type { SqliteRegistryOptions } from './store.js';

export class SqliteRegistry extends SqliteAdmin implements RegistryStore, RegistryArchive {
  /** Opens the database at `opts.path`, creating or upgrading its schema. */
  static open(opts: SqliteRegistryOptions): SqliteRegistry {
    const { db, from, to } = SqliteCore.connect(opts);
    const reg = new SqliteRegistry(db, opts.path, opts.logger, opts);
    if (from !== to) opts.logger.info({ database: opts.path, from, to }, from === 0 ? 'registry database created' : 'registry database schema upgraded');
    reg.sync();
    return reg;
  }

  // ---- groups ----

  async getGroup(name: string): Promise<GroupRecord | null> {
    this.sync();
    return this.index.groups.get(name) ?? null;
  }

  async listGroups(): Promise<GroupRecord[]> {
    this.sync();
    return [...this.index.groups.values()];
  }

  async updateGroup(name: string, update: GroupUpdate): Promise<GroupRecord> {
    checkName(name, 'group name');
    checkGroupUpdate(update);
    return this.write(`updating group ${name}`, () => {
      const old = this.index.groups.get(name) ?? { name, vnfs: null, enabled: null, debug: null, boot: null, desc: null, attrs: {} };
      const next: GroupRecord = { ...old, attrs: mergeAttrs(old.attrs, update.attrs) };
      for (const k of ['vnfs', 'enabled', 'debug', 'boot', 'desc'] as const) {
        if (update[k] !== undefined) (next as unknown as Record<string, unknown>)[k] = update[k];
      }
      this.st.upsertGroup.run(groupParams(next));
      for (const k of Object.keys(old.attrs)) if (!(k in next.attrs)) this.st.deleteGroupAttr.run(name, k);
      for (const [k, v] of Object.entries(next.attrs)) if (old.attrs[k] !== v) this.st.setGroupAttr.run(name, k, v);
      return this.index.putGroup(next);
    });
  }

  /** Deletes the group's settings; its nodes keep the group name and fall back to the defaults. */
  async deleteGroup(name: string): Promise<void> {
    this.write(`deleting group ${name}`, () => {
      if (!this.index.groups.has(name)) throw new NodeNotFoundError(`no group named ${JSON.stringify(name)}`);
      this.st.deleteGroup.run(name);
      this.index.groups.delete(name);
    });
  }

  // ---- unknown machines ----

  async recordUnknown(nodeid: string, addr: string | null, via: string): Promise<void> {
    this.assertOpen();
    const mac = parseMac(nodeid);
    if (mac === null) return;
    this.queue.sighting(mac, addr, via, Date.now());
    this.queued();
  }

  async listUnknown(): Promise<UnknownNode[]> {
    this.sync();
    await this.drain();
    return this.st.listUnknown.all();
  }

  // ---- leases ----

  async getLease(hwaddr: string): Promise<Lease | null> {
    this.syncHot();
    const mac = this.index.leases.has(hwaddr) ? hwaddr : parseMac(hwaddr);
    return mac === null ? null : (this.index.leases.get(mac) ?? null);
  }

  async getLeaseByAddress(address: string): Promise<Lease | null> {
    this.syncHot();
    return this.index.leasesByAddress.get(address) ?? null;
  }

  async listLeases(): Promise<Lease[]> {
    this.sync();
    return [...this.index.leases.values()];
  }

  async putLease(lease: Lease): Promise<void> {
    this.syncHot();
    const hwaddr = checkNodeid(lease.hwaddr);
    if (!isIPv4(lease.address)) throw new RegistryValueError(`lease of ${hwaddr}: ${JSON.stringify(lease.address)} is not an IPv4 address`);
    // A lease of a declined address lifts the decline (index.putLease), in the database too.
    const lifted = this.index.declined.has(lease.address);
    if (lifted) this.queue.declined(lease.address, null);
    // One copy, frozen in place: the caller's object is never kept.
    const stored = this.index.putLease({ ...lease, hwaddr }, true);
    this.queue.lease(hwaddr, stored);
    if (!this.journal) return this.queuedDurable();
    this.queued();
    if (lifted) void this.journal.decline(lease.address, null).catch(() => undefined);
    return this.journal.lease(hwaddr, stored);
  }

  async listDeclined(): Promise<DeclinedAddress[]> {
    this.sync();
    return [...this.index.declined.values()];
  }

  async putDeclined(declined: DeclinedAddress): Promise<void> {
    this.syncHot();
    const { address, expires } = declined;
    if (!isIPv4(address)) throw new RegistryValueError(`declined address ${JSON.stringify(address)} is not an IPv4 address`);
    const stored = this.index.putDeclined({ address, expires }, true);
    this.queue.declined(address, stored);
    if (!this.journal) return this.queuedDurable();
    this.queued();
    return this.journal.decline(address, stored);
  }

  async deleteLease(hwaddr: string): Promise<void> {
    this.syncHot();
    const mac = checkNodeid(hwaddr);
    this.index.removeLease(mac);
    this.queue.lease(mac, null);
    if (!this.journal) return this.queuedDurable();
    this.queued();
    return this.journal.lease(mac, null);
  }

  // ---- timeline ----

  async addEvent(event: TimelineEvent): Promise<void> {
    this.assertOpen();
    const nodeid = parseMac(event.nodeid) ?? event.nodeid;
    // Copied as it is queued: the caller may reuse its object.
    this.queue.event({ time: event.time, nodeid, source: event.source, stage: event.stage, msg: event.msg, ok: event.ok, addr: event.addr ?? null });
    this.queued();
  }

  async listEvents(nodeid: string, options: { since?: number; limit?: number } = {}): Promise<TimelineEvent[]> {
    this.sync();
    await this.drain();
    const mac = parseMac(nodeid) ?? nodeid;
    const since = options.since ?? 0;
    const limit = options.limit ?? -1;
    // A row may hold two events (an offer and its ack): expand, keep the window asked for, in time order.
    const events = this.st.eventsSince.all(mac, since, limit).flatMap(eventsFromRow).filter((e) => e.time >= since);
    events.sort((a, b) => a.time - b.time);
    return limit >= 0 && events.length > limit ? events.slice(events.length - limit) : events;
  }

  async flush(): Promise<void> {
    await this.drain();
  }

  // ---- vnfs images (one server: local-images.ts) ----

  readonly #images = new LocalImages();

  async publishImage(image: VnfsImagePublication): Promise<VnfsImageRecord> {
    return this.#images.publish(image);
  }

  async getImage(vnfs: string): Promise<VnfsImageRecord | null> {
    return this.#images.get(vnfs);
  }

  async listImages(): Promise<VnfsImageRecord[]> {
    return this.#images.list();
  }

  async forgetImage(vnfs: string): Promise<boolean> {
    return this.#images.forget(vnfs);
  }

  async holdImage(vnfs: string, sha256: string, server: string): Promise<void> {
    this.#images.hold(vnfs, sha256, server);
  }

  async imageHolders(vnfs: string): Promise<VnfsImageHolder[]> {
    return this.#images.holders(vnfs);
  }

  async clusterSecret(): Promise<string> {
    return this.#images.secret();
  }

  onImagePublished(fn: (vnfs: string | null) => void): () => void {
    return this.#images.onPublished(fn);
  }

  // ---- the whole registry (db copy) ----

  async dump(): Promise<RegistryDump> {
    await this.flush();
    const rows = this.db.prepare<[], EventRow>('SELECT * FROM events ORDER BY time, id').all();
    const events = rows.flatMap(eventsFromRow).sort((a, b) => a.time - b.time);
    return {
      nodes: await this.listNodes(),
      groups: await this.listGroups(),
      leases: await this.listLeases(),
      declined: await this.listDeclined(),
      unknown: await this.listUnknown(),
      events,
      tokens: await this.listTokens(),
      audit: await allAudit((o) => this.listAudit(o)),
      tasks: await allTasks((o) => this.listTasks(o)),
    };
  }

  async close(): Promise<void> {
    this.registerPending();
    // Leases accepted are in the journal before the last batch is taken.
    await this.journal?.idle();
    await this.closeWriter();
    this.closeCore();
  }
}
