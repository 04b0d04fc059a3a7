/**
 * Address pools and the lease table, in memory. The server loads the persisted leases once at
 * listen(), answers from here (no database round trip per packet) and writes changes through its
 * lease store, which batches them.
 *
 * Allocation keeps addresses stable: a hardware address gets back the address it last had (even
 * long expired or released); new clients take never-used addresses first, and only when the pool
 * has none left is the address of the longest-expired lease of another client reclaimed. The
 * never-used address is the next one (iterative) or one drawn at random among them (several
 * servers sharing a lease database, so that they seldom offer the same one).
 */
import { ipToUint32 } from '../../protocol/dhcp/packet.js';

/** A lease as the server keeps it; the same shape as the registry's Lease. */
export interface DhcpLease {
  hwaddr: string;
  address: string;
  expires: number;
  state: 'offered' | 'bound' | 'released';
  hostname?: string | null;
  clientId?: string | null;
  uuid?: string | null;
}

/** An address kept from everyone until `expires` (declined by a client, or answering a ping); the registry's DeclinedAddress. */
export interface DhcpDeclined {
  address: string;
  expires: number;
}

export interface PoolOptions {
  /** Network in CIDR form. */
  network: string;
  range: readonly [string, string];
  router: string | null;
  dns: readonly string[];
  domain: string | null;
  /** Interface whose broadcasts this pool serves; null: reached through relays (giaddr) only. */
  interface: string | null;
}

export const ipToInt = ipToUint32;
export const intToIp = (n: number): string => `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

export class Pool {
  readonly network: number;
  readonly prefix: number;
  readonly mask: number;
  readonly start: number;
  readonly end: number;
  /** Where the search for a never-used address resumes. */
  cursor: number;

  constructor(readonly options: PoolOptions) {
    const [net, bits] = options.network.split('/');
    this.prefix = Number(bits);
    if (!(this.prefix >= 0 && this.prefix <= 32)) throw new TypeError(`dhcp pool ${options.network}: bad prefix length`);
    this.mask = this.prefix === 0 ? 0 : (0xffffffff << (32 - this.prefix)) >>> 0;
    this.network = (ipToInt(net!) & this.mask) >>> 0;
    this.start = ipToInt(options.range[0]);
    this.end = ipToInt(options.range[1]);
    if (this.start > this.end) throw new TypeError(`dhcp pool ${options.network}: range ${options.range.join('-')} is reversed`);
    if (!this.contains(this.start) || !this.contains(this.end)) throw new TypeError(`dhcp pool ${options.network}: range ${options.range.join('-')} is outside the network`);
    this.cursor = this.start;
  }

  contains(addr: number): boolean {
    return ((addr & this.mask) >>> 0) === this.network;
  }

  inRange(addr: number): boolean {
    return addr >= this.start && addr <= this.end;
  }

  get netmask(): string {
    return intToIp(this.mask);
  }

  get broadcast(): string {
    return intToIp((this.network | ~this.mask) >>> 0);
  }

  get size(): number {
    return this.end - this.start + 1;
  }
}

/** Random draws of the random allocator before it lists the free addresses. */
const RANDOM_DRAWS = 32;

export class LeaseTable {
  private readonly byHw = new Map<string, DhcpLease>();
  private readonly byAddr = new Map<number, DhcpLease>();
  /** Declined addresses: when each may be offered again. An address is leased or declined, never both. */
  private readonly declinedUntil = new Map<number, number>();

  load(leases: Iterable<DhcpLease>, declined: Iterable<DhcpDeclined> = []): void {
    for (const l of leases) this.set(l);
    // After the leases: a decline in the store is newer than any lease of its address (a lease lifts it).
    for (const d of declined) this.decline(d.address, d.expires);
  }

  /** Forgets every lease and declined address (before the store's are read again). */
  clear(): void {
    this.byHw.clear();
    this.byAddr.clear();
    this.declinedUntil.clear();
  }

  /** Leases and declined addresses held. */
  get size(): number {
    return this.byHw.size + this.declinedUntil.size;
  }

  byHwaddr(hwaddr: string): DhcpLease | undefined {
    return this.byHw.get(hwaddr);
  }

  byAddress(addr: number): DhcpLease | undefined {
    return this.byAddr.get(addr);
  }

  set(lease: DhcpLease): void {
    const old = this.byHw.get(lease.hwaddr);
    if (old && this.byAddr.get(ipToInt(old.address)) === old) this.byAddr.delete(ipToInt(old.address));
    const addr = ipToInt(lease.address);
    const holder = this.byAddr.get(addr);
    // The address moves to this client: the previous holder loses its binding, a decline is lifted.
    if (holder && holder.hwaddr !== lease.hwaddr) this.byHw.delete(holder.hwaddr);
    this.declinedUntil.delete(addr);
    this.byHw.set(lease.hwaddr, lease);
    this.byAddr.set(addr, lease);
  }

  /** Keeps `address` from everyone until `expires`; its holder, if any, loses its binding. */
  decline(address: string, expires: number): void {
    const addr = ipToInt(address);
    const holder = this.byAddr.get(addr);
    if (holder) {
      if (this.byHw.get(holder.hwaddr) === holder) this.byHw.delete(holder.hwaddr);
      this.byAddr.delete(addr);
    }
    this.declinedUntil.set(addr, expires);
  }

  /** Lifts the decline of `address` (its holder, if any, keeps it). */
  undecline(address: string): void {
    this.declinedUntil.delete(ipToInt(address));
  }

  /** Until when `address` is declined, or undefined when it is not. */
  declinedUntilOf(address: string): number | undefined {
    return this.declinedUntil.get(ipToInt(address));
  }

  delete(hwaddr: string): DhcpLease | undefined {
    const old = this.byHw.get(hwaddr);
    if (!old) return undefined;
    this.byHw.delete(hwaddr);
    if (this.byAddr.get(ipToInt(old.address)) === old) this.byAddr.delete(ipToInt(old.address));
    return old;
  }

  /** Whether `addr` may be given to `hwaddr` now. */
  isFreeFor(addr: number, hwaddr: string, now: number): boolean {
    const declined = this.declinedUntil.get(addr);
    if (declined !== undefined) return declined <= now;
    const l = this.byAddr.get(addr);
    return !l || l.hwaddr === hwaddr;
  }

  /**
   * A candidate address for a new client of `pool`: the next never-used one after the cursor,
   * else the longest-expired lease of someone else. `skip` filters candidates (reserved
   * addresses, ones that answered a ping). Null when the pool is exhausted.
   */
  candidate(pool: Pool, hwaddr: string, now: number, skip: (addr: number) => boolean, random = false): number | null {
    const size = pool.size;
    const unused = (addr: number): boolean => {
      const declined = this.declinedUntil.get(addr);
      return !this.byAddr.has(addr) && (declined === undefined || declined <= now) && !skip(addr);
    };
    if (random) {
      // A never-used address drawn at random: a few draws find one while the pool is not full,
      // else one picked among all that are left.
      for (let n = 0; n < RANDOM_DRAWS; n++) {
        const addr = pool.start + Math.floor(Math.random() * size);
        if (unused(addr)) return addr;
      }
      const free: number[] = [];
      for (let addr = pool.start; addr <= pool.end; addr++) if (unused(addr)) free.push(addr);
      if (free.length > 0) return free[Math.floor(Math.random() * free.length)]!;
    }
    for (let n = 0; n < (random ? 0 : size); n++) {
      const addr = pool.cursor;
      pool.cursor = addr >= pool.end ? pool.start : addr + 1;
      const l = this.byAddr.get(addr);
      const declined = this.declinedUntil.get(addr);
      if (!l && (declined === undefined || declined <= now) && !skip(addr)) return addr;
      if (l && l.hwaddr === hwaddr) return addr;
    }
    // Reclaim the longest-expired lease of someone else, or the longest-expired decline.
    let best: number | null = null;
    let bestExpires = Infinity;
    for (const l of this.byAddr.values()) {
      if (l.expires > now || l.expires >= bestExpires) continue;
      const a = ipToInt(l.address);
      if (!pool.inRange(a) || skip(a)) continue;
      best = a;
      bestExpires = l.expires;
    }
    for (const [a, expires] of this.declinedUntil) {
      if (expires > now || expires >= bestExpires || !pool.inRange(a) || skip(a)) continue;
      best = a;
      bestExpires = expires;
    }
    return best;
  }

  /** Addresses of `pool`'s range held now: by a lease not yet expired (offered, bound), or declined. */
  inUse(pool: Pool, now: number): number {
    let n = 0;
    for (const [a, l] of this.byAddr) if (l.expires > now && l.state !== 'released' && pool.inRange(a)) n++;
    for (const [a, expires] of this.declinedUntil) if (expires > now && pool.inRange(a)) n++;
    return n;
  }

  all(): IterableIterator<DhcpLease> {
    return this.byHw.values();
  }
}
