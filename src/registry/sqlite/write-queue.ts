/**
 * The writes the servers make on every packet and request (contacts, leases, unknown machines,
 * timeline events), held in memory and written in one transaction per batch. Coalesced by key:
 * 1,000 contacts of one node in a batch are one UPDATE. The index is updated at once, so readers in
 * this process see a write as soon as it is accepted; `flush` makes it durable.
 */
import type { RegistryIndex } from '../memory-index.js';
import type { Lease, TimelineEvent } from '../types.js';
import { leaseParams, type Statements } from './statements.js';

interface Contact {
  state: string | null;
  time: number;
  addr: string | null;
}

interface Sighting {
  addr: string | null;
  via: string;
  first: number;
  last: number;
  count: number;
}

/** A queued event, possibly carrying the one it absorbed (see `event`). */
type QueuedEvent = TimelineEvent & { prev?: TimelineEvent };

export class WriteQueue {
  private contacts = new Map<string, Contact>();
  private leases = new Map<string, Lease | null>();
  private unknown = new Map<string, Sighting>();
  private events: QueuedEvent[] = [];
  /** Position in `events` of each node's last queued event. */
  private lastEvent = new Map<string, number>();

  get size(): number {
    return this.contacts.size + this.leases.size + this.unknown.size + this.events.length;
  }

  contact(nodeid: string, c: Contact): void {
    this.contacts.set(nodeid, c);
  }

  lease(hwaddr: string, lease: Lease | null): void {
    this.leases.set(hwaddr, lease);
  }

  sighting(nodeid: string, addr: string | null, via: string, time: number): void {
    const s = this.unknown.get(nodeid);
    if (s) {
      s.addr = addr ?? s.addr;
      s.via = via;
      s.last = Math.max(s.last, time);
      s.count++;
    } else {
      this.unknown.set(nodeid, { addr, via, first: time, last: time, count: 1 });
    }
  }

  /**
   * Queues an event. A DHCP ack whose offer is still queued as the node's last event takes the
   * offer's row (one row, two events: listEvents gives both back): a boot storm writes one timeline
   * row per exchange instead of one per packet.
   */
  event(e: TimelineEvent): void {
    if (e.source === 'dhcp' && e.stage === 'ack') {
      const i = this.lastEvent.get(e.nodeid);
      const before = i === undefined ? undefined : this.events[i];
      if (before && before.source === 'dhcp' && before.stage === 'offer' && before.prev === undefined && before.time <= e.time) {
        this.events[i!] = { ...e, prev: before };
        return;
      }
    }
    this.lastEvent.set(e.nodeid, this.events.push(e) - 1);
  }

  /** A node registered in the meantime is no longer unknown. */
  forgetUnknown(nodeid: string): void {
    this.unknown.delete(nodeid);
  }

  /**
   * Writes everything queued with `st`; the caller wraps this in a transaction. The queue is emptied
   * only by `clear()` after the transaction committed, so a failed batch is retried, not lost.
   */
  writeTo(st: Statements): void {
    for (const [nodeid, c] of this.contacts) st.contact.run(c.state, c.time, c.addr, nodeid);
    for (const [hwaddr, lease] of this.leases) {
      if (lease === null) st.deleteLease.run(hwaddr);
      else st.upsertLease.run(...leaseParams(lease));
    }
    for (const [nodeid, s] of this.unknown) st.upsertUnknown.run(nodeid, s.addr, s.via, s.first, s.last, s.count);
    for (const e of this.events) {
      const p = e.prev;
      st.insertEvent.run(e.time, e.nodeid, e.source, e.stage, e.msg, e.ok ? 1 : 0, e.addr ?? null, p ? p.time : null, p ? p.stage : null, p ? p.msg : null, p ? (p.ok ? 1 : 0) : null, p ? (p.addr ?? null) : null);
    }
  }

  /** Lays what is queued over an index just reloaded from the database. */
  applyTo(index: RegistryIndex): void {
    for (const [nodeid, c] of this.contacts) {
      const node = index.byNodeid.get(nodeid);
      if (node) index.putNode(node, { ...node, state: c.state, lastcontact: c.time, lastaddr: c.addr });
    }
    for (const [hwaddr, lease] of this.leases) {
      if (lease === null) index.removeLease(hwaddr);
      else index.putLease(lease);
    }
  }

  clear(): void {
    this.contacts.clear();
    this.leases.clear();
    this.unknown.clear();
    this.events = [];
    this.lastEvent.clear();
  }
}
