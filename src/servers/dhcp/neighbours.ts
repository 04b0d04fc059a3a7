/**
 * May a reply be unicast to a client's `ciaddr` without waiting for ARP? RFC 2131 section 4.1 says
 * replies to a client that has an address (ciaddr) are unicast to it. The kernel holds a datagram to
 * an on-link address it has no link-layer address for while it asks ARP (about 3 s), and charges it
 * to the sending socket's buffer: a storm of requests with made-up ciaddrs (broken firmware, fuzzing,
 * an attacker) fills the buffer, and every later reply, the broadcasts to real booting clients
 * included, waits behind them for seconds.
 *
 * So an on-link ciaddr is unicast to only when the kernel already has it in its ARP table (complete
 * or stale): a renewing client that unicast its REQUEST to us had to ARP for our address first, and
 * the kernel learned its address from that request. Any other on-link client (rebinding: it
 * broadcasts, so it listens to broadcasts too) is answered by broadcast. An off-link ciaddr (a
 * renewing client behind a router) goes to the router, whose address is resolved: unicast as usual.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { ipToInt } from './pool.js';

/** The ARP table is re-read at most this often, when an address is missing from it. */
const ARP_REFRESH_MS = 250;
/** Interface subnets are re-read at most this often. */
const SUBNETS_TTL_MS = 1000;
/** Linux ARP entry flag: the entry has a link-layer address (ATF_COM). */
const ATF_COM = 0x2;

interface Subnet {
  iface: string;
  network: number;
  mask: number;
}

export class Neighbours {
  private arp: { known: Set<string>; at: number; readable: boolean } = { known: new Set(), at: -Infinity, readable: true };
  private subnets: { list: Subnet[]; at: number } = { list: [], at: -Infinity };

  constructor(
    /** Reads the kernel's ARP table (tests inject their own). */
    private readonly readArp: () => string = () => readFileSync('/proc/net/arp', 'latin1'),
    private readonly interfaces: typeof networkInterfaces = networkInterfaces,
  ) {}

  /** True when a datagram to `address` leaves at once (no ARP wait) through `iface` (null: any). */
  deliverable(address: string, iface: string | null, now = Date.now()): boolean {
    if (!this.onLink(address, iface, now)) return true;
    if (this.arp.known.has(address)) return true;
    if (now - this.arp.at >= ARP_REFRESH_MS) this.refreshArp(now);
    // Without an ARP table to read (not Linux) the kernel's behaviour is unknown: as the RFC says.
    return !this.arp.readable || this.arp.known.has(address);
  }

  private onLink(address: string, iface: string | null, now: number): boolean {
    if (now - this.subnets.at >= SUBNETS_TTL_MS) {
      const list: Subnet[] = [];
      for (const [name, addrs] of Object.entries(this.interfaces())) {
        for (const a of addrs ?? []) {
          if (a.family !== 'IPv4' || a.internal) continue;
          const mask = ipToInt(a.netmask);
          list.push({ iface: name, network: (ipToInt(a.address) & mask) >>> 0, mask });
        }
      }
      this.subnets = { list, at: now };
    }
    const n = ipToInt(address);
    return this.subnets.list.some((s) => (iface === null || s.iface === iface) && ((n & s.mask) >>> 0) === s.network);
  }

  private refreshArp(now: number): void {
    const known = new Set<string>();
    let readable = true;
    try {
      for (const line of this.readArp().split('\n').slice(1)) {
        const [ip, , flags, mac] = line.trim().split(/\s+/);
        if (ip && flags && mac && (Number(flags) & ATF_COM) !== 0 && mac !== '00:00:00:00:00:00') known.add(ip);
      }
    } catch {
      readable = false;
    }
    this.arp = { known, at: now, readable };
  }
}
