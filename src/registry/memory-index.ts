/**
 * The in-memory index a backend answers hot lookups from: the DHCP and HTTP servers look a node up by
 * hardware address or client address on every packet and request. Records are frozen, so a caller
 * can never change the index by mutating what it got back.
 */
import type { DeclinedAddress, GroupRecord, Lease, NodeRecord } from './types.js';

export class RegistryIndex {
  readonly nodes = new Map<string, NodeRecord>();
  readonly byNodeid = new Map<string, NodeRecord>();
  readonly byIpaddr = new Map<string, NodeRecord>();
  readonly groups = new Map<string, GroupRecord>();
  readonly leases = new Map<string, Lease>();
  readonly leasesByAddress = new Map<string, Lease>();
  /** Declined addresses, by address. */
  readonly declined = new Map<string, DeclinedAddress>();

  clear(): void {
    for (const m of [this.nodes, this.byNodeid, this.byIpaddr, this.groups, this.leases, this.leasesByAddress, this.declined]) m.clear();
  }

  /**
   * Replaces `old` (null for a new node) with `node`, keeping every map consistent. Returns the stored
   * record. `owned`: the record was just built for the index, freeze it as it is instead of a copy.
   */
  putNode(old: NodeRecord | null, node: NodeRecord, owned = false): NodeRecord {
    if (old) this.removeNode(old);
    const frozen = owned ? Object.freeze(Object.assign(node, { attrs: Object.freeze(node.attrs) })) : (Object.freeze({ ...node, attrs: Object.freeze({ ...node.attrs }) }) as NodeRecord);
    this.nodes.set(frozen.name, frozen);
    this.byNodeid.set(frozen.nodeid, frozen);
    if (frozen.ipaddr !== null) this.byIpaddr.set(frozen.ipaddr, frozen);
    return frozen;
  }

  removeNode(node: NodeRecord): void {
    if (this.nodes.get(node.name) === node) this.nodes.delete(node.name);
    if (this.byNodeid.get(node.nodeid) === node) this.byNodeid.delete(node.nodeid);
    if (node.ipaddr !== null && this.byIpaddr.get(node.ipaddr) === node) this.byIpaddr.delete(node.ipaddr);
  }

  putGroup(group: GroupRecord): GroupRecord {
    const frozen = Object.freeze({ ...group, attrs: Object.freeze({ ...group.attrs }) }) as GroupRecord;
    this.groups.set(frozen.name, frozen);
    return frozen;
  }

  /** Stores a lease; `owned`: the object was just built for the index, freeze it instead of a copy. */
  /**
   * `liftDecline` false: a lease re-read from the database (the cache's refresh), which may be older
   * than a decline of its address; the database announces a lifted decline itself.
   */
  putLease(lease: Lease, owned = false, liftDecline = true): Lease {
    const old = this.leases.get(lease.hwaddr);
    if (old && this.leasesByAddress.get(old.address) === old) this.leasesByAddress.delete(old.address);
    const frozen = Object.freeze(owned ? lease : { ...lease });
    this.leases.set(frozen.hwaddr, frozen);
    this.leasesByAddress.set(frozen.address, frozen);
    // A lease of the address is newer than its decline: the address is in use again.
    if (liftDecline) this.declined.delete(frozen.address);
    return frozen;
  }

  /**
   * Quarantines an address. Whoever held it no longer does (its lease stays, by hardware address, as
   * the address it would like back), so that no node is found by it meanwhile.
   */
  putDeclined(declined: DeclinedAddress, owned = false): DeclinedAddress {
    const frozen = Object.freeze(owned ? declined : { ...declined });
    this.leasesByAddress.delete(frozen.address);
    this.declined.set(frozen.address, frozen);
    return frozen;
  }

  removeDeclined(address: string): void {
    this.declined.delete(address);
  }

  removeLease(hwaddr: string): void {
    const old = this.leases.get(hwaddr);
    if (!old) return;
    this.leases.delete(hwaddr);
    if (this.leasesByAddress.get(old.address) === old) this.leasesByAddress.delete(old.address);
  }

  /** The node using `addr`: its fixed address first, then a live (offered or bound) lease of an address not declined. */
  nodeByAddress(addr: string): NodeRecord | null {
    const fixed = this.byIpaddr.get(addr);
    if (fixed) return fixed;
    // As the databases' query has it: a lease re-read after its address was declined (a change
    // notification processed late) must not make the address a node's again.
    if (this.declined.has(addr)) return null;
    const lease = this.leasesByAddress.get(addr);
    if (!lease || (lease.state !== 'bound' && lease.state !== 'offered')) return null;
    return this.byNodeid.get(lease.hwaddr) ?? null;
  }
}
