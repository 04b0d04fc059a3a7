/**
 * The writes the servers make on every packet and request (contacts, leases, declined addresses,
 * unknown machines, timeline events), held in memory and written in one transaction per batch. Coalesced by key:
 * 1,000 contacts of one node in a batch are one UPDATE. The index is updated at once, so readers in
 * this process see a write as soon as it is accepted; `flush` makes it durable.
 *
 * A batch may be handed to the writer thread (writer.ts): `take()` moves what is queued aside as the
 * batch in flight, new writes queue behind it, and it is dropped once committed (`sent()`) or put
 * back under the newer writes when its transaction failed (`unsent()`): retried, never lost.
 */
import { performance } from 'node:perf_hooks';
import type { RegistryIndex } from '../memory-index.js';
import type { DeclinedAddress, Lease, TimelineEvent } from '../types.js';
import { leaseParams, type BatchStatement, type Statements } from './statements.js';

/** A node's contact values as they are after it (the latest wins): state, time, address, last boot. */
interface Contact {
  state: string | null;
  /** Null only for a boot report of a node never contacted (its lastcontact stays unset). */
  time: number | null;
  addr: string | null;
  bootVnfs: string | null;
  bootImage: string | null;
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

/** One batch of writes. */
class Batch {
  contacts = new Map<string, Contact>();
  leases = new Map<string, Lease | null>();
  /** Declined addresses by address (null: lifted); durable, as leases. */
  declined = new Map<string, DeclinedAddress | null>();
  unknown = new Map<string, Sighting>();
  events: QueuedEvent[] = [];
  /** Position in `events` of each node's last queued event. */
  lastEvent = new Map<string, number>();
  /** When the first write other than a lease entered this batch (performance.now()), or null. */
  otherSince: number | null = null;

  get size(): number {
    return this.contacts.size + this.leases.size + this.declined.size + this.unknown.size + this.events.length;
  }
}

/** The statements of a batch and their one parameter each (a JSON array of rows, see BATCH_SQL). */
export type BatchSteps = Array<[BatchStatement, string | number]>;

export class WriteQueue {
  private q = new Batch();
  /** The batch handed to the writer thread and not yet committed. */
  private flying: Batch | null = null;

  get size(): number {
    return this.q.size;
  }

  /** Leases and declined addresses queued (what `take(true)` would take). */
  get leasesQueued(): number {
    return this.q.leases.size + this.q.declined.size;
  }

  /** True while a batch is with the writer thread. */
  get inFlight(): boolean {
    return this.flying !== null;
  }

  /** How long the oldest queued write other than a lease has waited, in ms (0: none queued). */
  otherAge(now: number): number {
    return this.q.otherSince === null ? 0 : now - this.q.otherSince;
  }

  private other(): void {
    this.q.otherSince ??= performance.now();
  }

  contact(nodeid: string, c: Contact): void {
    this.other();
    this.q.contacts.set(nodeid, c);
  }

  lease(hwaddr: string, lease: Lease | null): void {
    this.q.leases.set(hwaddr, lease);
  }

  declined(address: string, declined: DeclinedAddress | null): void {
    this.q.declined.set(address, declined);
  }

  sighting(nodeid: string, addr: string | null, via: string, time: number): void {
    this.other();
    const s = this.q.unknown.get(nodeid);
    if (s) {
      s.addr = addr ?? s.addr;
      s.via = via;
      s.last = Math.max(s.last, time);
      s.count++;
    } else {
      this.q.unknown.set(nodeid, { addr, via, first: time, last: time, count: 1 });
    }
  }

  /**
   * Queues an event. A DHCP ack whose offer is still queued as the node's last event takes the
   * offer's row (one row, two events: listEvents gives both back): a boot storm writes one timeline
   * row per exchange instead of one per packet.
   */
  event(e: TimelineEvent): void {
    this.other();
    const q = this.q;
    if (e.source === 'dhcp' && e.stage === 'ack') {
      const i = q.lastEvent.get(e.nodeid);
      const before = i === undefined ? undefined : q.events[i];
      if (before && before.source === 'dhcp' && before.stage === 'offer' && before.prev === undefined && before.time <= e.time) {
        q.events[i!] = { ...e, prev: before };
        return;
      }
    }
    q.lastEvent.set(e.nodeid, q.events.push(e) - 1);
  }

  /** A node registered in the meantime is no longer unknown. */
  forgetUnknown(nodeid: string): void {
    this.q.unknown.delete(nodeid);
    this.flying?.unknown.delete(nodeid);
  }

  /**
   * Runs the queued writes with `st` (see BATCH_SQL); the caller wraps this in a transaction. The queue
   * is emptied only by `clear()` after the transaction committed, so a failed batch is retried, not lost.
   */
  writeTo(st: Statements): void {
    for (const [name, arg] of stepsOf(this.q)) st.batch[name].run(arg);
  }

  /**
   * Moves what is queued aside as the batch in flight and returns its statements; `leasesOnly`
   * takes the leases and leaves the rest queued (a group commit that DHCPACKs wait for stays small,
   * and a DHCP offer's timeline event stays queued for its ack to join).
   */
  take(leasesOnly = false): BatchSteps {
    if (this.flying) throw new Error('write queue: a batch is already in flight');
    if (leasesOnly) {
      const b = new Batch();
      b.leases = this.q.leases;
      b.declined = this.q.declined;
      this.q.leases = new Map();
      this.q.declined = new Map();
      this.flying = b;
    } else {
      this.flying = this.q;
      this.q = new Batch();
    }
    return stepsOf(this.flying);
  }

  /** The batch in flight is committed. */
  sent(): void {
    this.flying = null;
  }

  /** The batch in flight failed: its writes go back in the queue, under the newer ones. */
  unsent(): void {
    const old = this.flying;
    if (!old) return;
    this.flying = null;
    const q = this.q;
    for (const [k, c] of q.contacts) old.contacts.set(k, c);
    for (const [k, l] of q.leases) old.leases.set(k, l);
    for (const [k, d] of q.declined) old.declined.set(k, d);
    for (const [k, s] of q.unknown) {
      const o = old.unknown.get(k);
      old.unknown.set(k, o ? { addr: s.addr ?? o.addr, via: s.via, first: Math.min(o.first, s.first), last: Math.max(o.last, s.last), count: o.count + s.count } : s);
    }
    const base = old.events.length;
    for (const e of q.events) old.events.push(e);
    for (const [k, i] of q.lastEvent) old.lastEvent.set(k, base + i);
    if (q.otherSince !== null) old.otherSince = old.otherSince === null ? q.otherSince : Math.min(old.otherSince, q.otherSince);
    this.q = old;
  }

  /** Lays what is queued (and in flight) over an index just reloaded from the database. */
  applyTo(index: RegistryIndex): void {
    if (this.flying) applyBatch(this.flying, index);
    applyBatch(this.q, index);
  }

  /** Empties the queue (not the batch in flight). */
  clear(): void {
    this.q = new Batch();
  }
}

function stepsOf(b: Batch): BatchSteps {
  const steps: BatchSteps = [];
  if (b.contacts.size) steps.push(['contacts', JSON.stringify(Array.from(b.contacts, ([nodeid, c]) => [c.state, c.time, c.addr, nodeid, c.bootVnfs, c.bootImage]))]);
  const upserts: unknown[] = [];
  const deletes: string[] = [];
  for (const [hwaddr, l] of b.leases) {
    if (l === null) deletes.push(hwaddr);
    else upserts.push(leaseParams(l));
  }
  if (deletes.length) steps.push(['deleteLeases', JSON.stringify(deletes)]);
  if (upserts.length) steps.push(['leases', JSON.stringify(upserts)]);
  const declined: Array<[string, number]> = [];
  const lifted: string[] = [];
  for (const [address, d] of b.declined) {
    if (d === null) lifted.push(address);
    else declined.push([d.address, d.expires]);
  }
  if (lifted.length) steps.push(['deleteDeclined', JSON.stringify(lifted)]);
  if (declined.length) steps.push(['declined', JSON.stringify(declined)]);
  if (b.unknown.size) steps.push(['unknown', JSON.stringify(Array.from(b.unknown, ([nodeid, s]) => [nodeid, s.addr, s.via, s.first, s.last, s.count]))]);
  if (b.events.length) {
    const rows = b.events.map((e) => {
      const p = e.prev;
      return [e.time, e.nodeid, e.source, e.stage, e.msg, e.ok ? 1 : 0, e.addr ?? null, p ? p.time : null, p ? p.stage : null, p ? p.msg : null, p ? (p.ok ? 1 : 0) : null, p ? (p.addr ?? null) : null];
    });
    steps.push(['events', JSON.stringify(rows)]);
  }
  return steps;
}

function applyBatch(b: Batch, index: RegistryIndex): void {
  for (const [nodeid, c] of b.contacts) {
    const node = index.byNodeid.get(nodeid);
    if (node) index.putNode(node, { ...node, state: c.state, lastcontact: c.time, lastaddr: c.addr, bootVnfs: c.bootVnfs, bootImage: c.bootImage });
  }
  for (const [hwaddr, lease] of b.leases) {
    if (lease === null) index.removeLease(hwaddr);
    else index.putLease(lease);
  }
  for (const [address, d] of b.declined) {
    if (d === null) index.removeDeclined(address);
    else index.putDeclined(d);
  }
}
