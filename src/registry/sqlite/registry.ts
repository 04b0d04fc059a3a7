/**
 * The RegistryStore methods of the SQLite backend. Reads come from the in-memory index (after a
 * cheap check that no other process committed); admin writes run in IMMEDIATE transactions and
 * update the index once committed; server writes are batched (see write-queue.ts).
 */
import { isIPv4 } from 'node:net';
import { NodeNotFoundError } from '../../util/errors.js';
import { parseMac } from '../../util/mac.js';
import { nextFree } from '../../util/patterns.js';
import { ImportEntryError, RegistryValueError } from '../errors.js';
import { resolveNode, type ResolveDefaults } from '../resolve.js';
import {
  NamePatternExhaustedError,
  type AutoRegisterOptions,
  type GroupRecord,
  type GroupUpdate,
  type Lease,
  type NewNode,
  type NodeRecord,
  type NodeUpdate,
  type RegistryStore,
  type ResolvedNode,
  type TimelineEvent,
  type UnknownNode,
} from '../types.js';
import { checkGroupUpdate, checkName, checkNodeid, checkNodeUpdate, mergeAttrs, normalizeNewNode } from '../validate.js';
import { eventFromRow, groupParams, nodeParams } from './statements.js';
import { SqliteCore, type SqliteRegistryOptions } from './store.js';

export type { SqliteRegistryOptions } from './store.js';

interface PendingRegistration {
  mac: string;
  options: AutoRegisterOptions;
  resolve(result: { node: NodeRecord; created: boolean }): void;
  reject(err: unknown): void;
}

export class SqliteRegistry extends SqliteCore implements RegistryStore {
  /** Opens the database at `opts.path`, creating or upgrading its schema. */
  static open(opts: SqliteRegistryOptions): SqliteRegistry {
    const { db, from, to } = SqliteCore.connect(opts);
    const reg = new SqliteRegistry(db, opts.path, opts.logger, opts);
    if (from !== to) opts.logger.info({ database: opts.path, from, to }, from === 0 ? 'registry database created' : 'registry database schema upgraded');
    reg.sync();
    return reg;
  }

  // ---- nodes ----

  async getNode(name: string): Promise<NodeRecord | null> {
    this.sync();
    return this.index.nodes.get(name) ?? null;
  }

  async getNodeByNodeid(nodeid: string): Promise<NodeRecord | null> {
    this.syncHot();
    const hit = this.index.byNodeid.get(nodeid);
    if (hit) return hit;
    const mac = this.canonical(nodeid);
    return mac === null ? null : (this.index.byNodeid.get(mac) ?? null);
  }

  async getNodeByAddress(addr: string): Promise<NodeRecord | null> {
    this.syncHot();
    return this.index.nodeByAddress(addr);
  }

  async listNodes(): Promise<NodeRecord[]> {
    this.sync();
    return [...this.index.nodes.values()];
  }

  async addNode(node: NewNode): Promise<NodeRecord> {
    const record = normalizeNewNode(node);
    return this.write(`adding node ${record.name}`, () => this.insert(record));
  }

  async importNodes(nodes: NewNode[]): Promise<number> {
    const records = nodes.map((n, i) => {
      try {
        return normalizeNewNode(n);
      } catch (err) {
        throw new ImportEntryError(i, `entry ${i + 1}: ${(err as Error).message}`, { cause: err });
      }
    });
    const names = new Map<string, number>();
    const ids = new Map<string, number>();
    records.forEach((r, i) => {
      const dupName = names.get(r.name);
      if (dupName !== undefined) throw new ImportEntryError(i, `entry ${i + 1}: node name ${r.name} is also entry ${dupName + 1}`);
      const dupId = ids.get(r.nodeid);
      if (dupId !== undefined) throw new ImportEntryError(i, `entry ${i + 1}: hardware address ${r.nodeid} is also entry ${dupId + 1}`);
      names.set(r.name, i);
      ids.set(r.nodeid, i);
    });
    const added: NodeRecord[] = [];
    this.write(`importing ${records.length} nodes`, () => {
      records.forEach((r, i) => {
        try {
          this.assertFree(r);
          this.st.insertNode.run(nodeParams(r));
        } catch (err) {
          throw new ImportEntryError(i, `entry ${i + 1} (${r.name}): ${(err as Error).message}`, { cause: err });
        }
        for (const [k, v] of Object.entries(r.attrs)) this.st.setNodeAttr.run(r.name, k, v);
        this.st.deleteUnknown.run(r.nodeid);
        added.push(r);
      });
    });
    // Only once committed: a failed import leaves the index as it was.
    for (const r of added) {
      this.index.putNode(null, r);
      this.queue.forgetUnknown(r.nodeid);
    }
    return added.length;
  }

  /** Inserts a checked record (inside a write transaction) and indexes it once committed. */
  private insert(record: NodeRecord): NodeRecord {
    this.assertFree(record);
    this.st.insertNode.run(nodeParams(record));
    for (const [k, v] of Object.entries(record.attrs)) this.st.setNodeAttr.run(record.name, k, v);
    this.st.deleteUnknown.run(record.nodeid);
    this.queue.forgetUnknown(record.nodeid);
    return this.index.putNode(null, record);
  }

  async updateNode(name: string, update: NodeUpdate): Promise<NodeRecord> {
    checkNodeUpdate(update);
    return this.write(`updating node ${name}`, () => this.applyUpdate(name, update));
  }

  async updateNodes(names: string[], update: NodeUpdate): Promise<NodeRecord[]> {
    checkNodeUpdate(update);
    return this.write(`updating ${names.length} nodes`, () => names.map((name) => this.applyUpdate(name, update)));
  }

  /** One node's update, inside a write transaction. */
  private applyUpdate(name: string, update: NodeUpdate): NodeRecord {
    const old = this.mustNode(name);
    const next: NodeRecord = { ...old, attrs: old.attrs };
    for (const k of ['group', 'vnfs', 'enabled', 'debug', 'ipaddr', 'desc', 'boot'] as const) {
      if (update[k] !== undefined) (next as unknown as Record<string, unknown>)[k] = update[k];
    }
    next.attrs = mergeAttrs(old.attrs, update.attrs);
    if (next.ipaddr !== old.ipaddr) this.assertFree({ ipaddr: next.ipaddr }, name);
    return this.replace(old, next);
  }

  /** Writes `next` over `old` (same transaction as the caller) and updates the index. */
  private replace(old: NodeRecord, next: NodeRecord): NodeRecord {
    this.st.updateNode.run({ ...nodeParams(next), old: old.name });
    for (const k of Object.keys(old.attrs)) if (!(k in next.attrs)) this.st.deleteNodeAttr.run(next.name, k);
    for (const [k, v] of Object.entries(next.attrs)) if (old.attrs[k] !== v) this.st.setNodeAttr.run(next.name, k, v);
    return this.index.putNode(old, next);
  }

  async deleteNode(name: string): Promise<void> {
    await this.deleteNodes([name], `deleting node ${name}`);
  }

  async deleteNodes(names: string[], what = `deleting ${names.length} nodes`): Promise<void> {
    this.write(what, () => {
      for (const name of names) {
        const old = this.mustNode(name);
        this.st.deleteNode.run(name);
        this.index.removeNode(old);
      }
      this.generation++;
    });
  }

  async renameNode(oldName: string, newName: string): Promise<NodeRecord> {
    checkName(newName, 'node name');
    return this.write(`renaming node ${oldName}`, () => {
      const old = this.mustNode(oldName);
      if (newName === oldName) return old;
      this.assertFree({ name: newName });
      this.generation++;
      return this.replace(old, { ...old, name: newName });
    });
  }

  async replaceNodeid(name: string, nodeid: string): Promise<NodeRecord> {
    const mac = checkNodeid(nodeid);
    return this.write(`replacing the hardware address of node ${name}`, () => {
      const old = this.mustNode(name);
      if (old.nodeid === mac) return old;
      this.assertFree({ nodeid: mac }, name);
      const next = this.replace(old, { ...old, nodeid: mac });
      // The new board inherits the node's history and its address.
      this.st.moveEvents.run(mac, old.nodeid);
      this.st.deleteLease.run(mac);
      this.st.moveLease.run(mac, old.nodeid);
      this.st.deleteUnknown.run(mac);
      this.queue.forgetUnknown(mac);
      const lease = this.index.leases.get(old.nodeid);
      this.index.removeLease(mac);
      if (lease) {
        this.index.removeLease(old.nodeid);
        this.index.putLease({ ...lease, hwaddr: mac });
      }
      return next;
    });
  }

  async autoRegister(nodeid: string, options: AutoRegisterOptions): Promise<{ node: NodeRecord; created: boolean }> {
    const mac = checkNodeid(nodeid);
    this.syncHot();
    const known = this.index.byNodeid.get(mac);
    if (known) return { node: known, created: false };
    // A boot storm brings hundreds of unknown machines at once: those arriving in the same turn of
    // the event loop are registered in one transaction (one commit instead of one each).
    return new Promise((resolve, reject) => {
      this.registrations.push({ mac, options, resolve, reject });
      if (this.registrations.length === 1) setImmediate(() => this.registerPending());
    });
  }

  private registrations: PendingRegistration[] = [];
  private nameHints = new Map<string, { generation: number; n: number }>();

  private registerPending(): void {
    const batch = this.registrations;
    this.registrations = [];
    if (batch.length === 0) return;
    const results: Array<{ node: NodeRecord; created: boolean } | Error> = [];
    try {
      this.write(`auto-registering ${batch.length === 1 ? batch[0]!.mac : `${batch.length} machines`}`, () => {
        results.length = 0;
        for (const r of batch) {
          try {
            results.push(this.registerOne(r.mac, r.options));
          } catch (err) {
            if (!(err instanceof NamePatternExhaustedError)) throw err;
            results.push(err);
          }
        }
      });
    } catch (err) {
      for (const r of batch) r.reject(err);
      return;
    }
    batch.forEach((r, i) => {
      const result = results[i]!;
      if (result instanceof Error) r.reject(result);
      else r.resolve(result);
    });
  }

  /** One registration, inside the write transaction. */
  private registerOne(mac: string, options: AutoRegisterOptions): { node: NodeRecord; created: boolean } {
    const again = this.index.byNodeid.get(mac);
    if (again) return { node: again, created: false };
    // Every number below the hint was taken when it was set; a delete or rename (here or by another
    // process: a new index generation) may free one, so the hint only holds for its generation.
    const key = `${options.nodeName}\0${options.firstNode}`;
    const hint = this.nameHints.get(key);
    const from = hint && hint.generation === this.generation ? hint.n : options.firstNode;
    const free = nextFree(options.nodeName, options.firstNode, options.totalNodes, (n) => this.index.nodes.has(n), from);
    const name = free?.name ?? null;
    if (free) this.nameHints.set(key, { generation: this.generation, n: free.n + 1 });
    if (name === null) {
      const err = new NamePatternExhaustedError(
        `auto-registering ${mac}: no free name left in pattern ${options.nodeName} (from ${options.firstNode}` +
          `${options.totalNodes === null ? '' : `, ${options.totalNodes} names`}); raise defaults.totalNodes or widen defaults.nodeName`,
      );
      this.log.error({ nodeid: mac, pattern: options.nodeName }, err.message);
      throw err;
    }
    // vnfs, enabled and debug stay unset so that the group's settings apply, then the defaults.
    const node = this.insert(normalizeNewNode({ name, nodeid: mac, group: options.group }));
    this.log.info({ node: name, nodeid: mac, group: options.group }, 'node auto-registered');
    return { node, created: true };
  }

  async recordContact(nodeid: string, state: string | null, addr: string | null, time = Date.now()): Promise<void> {
    this.syncHot();
    const mac = this.canonical(nodeid);
    const old = mac === null ? undefined : this.index.byNodeid.get(mac);
    if (!old) return;
    const next = this.index.putNode(old, { ...old, state: state ?? old.state, lastcontact: time, lastaddr: addr ?? old.lastaddr });
    this.queue.contact(next.nodeid, { state: next.state, time, addr: next.lastaddr });
    this.queued();
  }

  async resolve(node: NodeRecord, defaults: ResolveDefaults): Promise<ResolvedNode> {
    this.syncHot();
    return resolveNode(node, this.index.groups.get(node.group ?? defaults.group) ?? null, defaults);
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
    this.flushQueued();
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
    const stored = this.index.putLease({ ...lease, hwaddr });
    this.queue.lease(hwaddr, stored);
    this.queued();
  }

  async deleteLease(hwaddr: string): Promise<void> {
    this.syncHot();
    const mac = checkNodeid(hwaddr);
    this.index.removeLease(mac);
    this.queue.lease(mac, null);
    this.queued();
  }

  // ---- timeline ----

  async addEvent(event: TimelineEvent): Promise<void> {
    this.assertOpen();
    const nodeid = parseMac(event.nodeid) ?? event.nodeid;
    this.queue.event({ ...event, nodeid });
    this.queued();
  }

  async listEvents(nodeid: string, options: { since?: number; limit?: number } = {}): Promise<TimelineEvent[]> {
    this.sync();
    this.flushQueued();
    const mac = parseMac(nodeid) ?? nodeid;
    return this.st.eventsSince.all(mac, options.since ?? 0, options.limit ?? -1).map(eventFromRow);
  }

  async flush(): Promise<void> {
    this.assertOpen();
    this.flushQueued();
  }

  async close(): Promise<void> {
    this.registerPending();
    this.closeCore();
  }
}
