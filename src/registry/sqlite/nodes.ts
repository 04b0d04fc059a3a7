/**
 * The node methods of the SQLite backend: reads from the in-memory index (after a cheap check that
 * no other process committed), admin writes in IMMEDIATE transactions that update the index once
 * committed, contacts batched (see write-queue.ts).
 */
import { ImportEntryError } from '../errors.js';
import { resolveNode, type ResolveDefaults } from '../resolve.js';
import type { NewNode, NodeRecord, NodeUpdate, ResolvedNode } from '../types.js';
import { checkName, checkNodeid, checkNodeUpdate, mergeAttrs, normalizeImport, normalizeNewNode } from '../validate.js';
import { nodeParams } from './statements.js';
import { SqliteCore } from './store.js';

export abstract class SqliteNodes extends SqliteCore {
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
    const records = normalizeImport(nodes);
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
  protected insert(record: NodeRecord): NodeRecord {
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

  async claimNode(candidates: readonly string[], key: string, update: NodeUpdate): Promise<NodeRecord | null> {
    checkNodeUpdate(update);
    if (update.attrs?.[key] === undefined || update.attrs[key] === null) throw new TypeError(`claimNode: the update must set the attribute it claims (${key})`);
    // In one IMMEDIATE transaction that first reads what other processes committed: no two callers,
    // in this process or another, see the same node unclaimed.
    return this.write(`claiming a node (${key})`, () => {
      for (const name of candidates) {
        const node = this.index.nodes.get(name);
        if (node && node.attrs[key] === undefined) return this.applyUpdate(name, update);
      }
      return null;
    });
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

  async recordContact(nodeid: string, state: string | null, addr: string | null, time = Date.now()): Promise<void> {
    this.syncHot();
    const mac = this.canonical(nodeid);
    const old = mac === null ? undefined : this.index.byNodeid.get(mac);
    if (!old) return;
    const next = this.index.putNode(old, { ...old, state: state ?? old.state, lastcontact: time, lastaddr: addr ?? old.lastaddr });
    this.queue.contact(next.nodeid, { state: next.state, time, addr: next.lastaddr, bootVnfs: next.bootVnfs, bootImage: next.bootImage });
    // A new state (init -> ready) is what a reload task waits for: committed before the node is answered.
    if (state !== null && state !== old.state) return this.queuedDurableAll();
    this.queued();
  }

  async recordBootImage(nodeid: string, vnfs: string, sha256: string): Promise<void> {
    this.syncHot();
    const mac = this.canonical(nodeid);
    const old = mac === null ? undefined : this.index.byNodeid.get(mac);
    if (!old) return;
    const next = this.index.putNode(old, { ...old, bootVnfs: vnfs, bootImage: sha256 });
    this.queue.contact(next.nodeid, { state: next.state, time: next.lastcontact, addr: next.lastaddr, bootVnfs: vnfs, bootImage: sha256 });
    return this.queuedDurableAll();
  }

  async resolve(node: NodeRecord, defaults: ResolveDefaults): Promise<ResolvedNode> {
    this.syncHot();
    return resolveNode(node, this.index.groups.get(node.group ?? defaults.group) ?? null, defaults);
  }

}
