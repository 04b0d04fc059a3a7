/**
 * The DHCP server: UDP sockets on port 67 (and 4011 in proxy mode), each tied to its interface,
 * feeding the state machine of engine.ts. A malformed packet is dropped, logged at debug level and
 * counted; only a socket error ends the server.
 */
import { CLIENT_PORT, PXE_PORT, SERVER_PORT } from '../../protocol/dhcp/constants.js';
import { getMessageType } from '../../protocol/dhcp/options.js';
import { decodePacket, DhcpDecodeError, type DhcpPacket } from '../../protocol/dhcp/packet.js';
import type { Logger } from '../../log/logger.js';
import { DhcpEngine, type Arrival } from './engine.js';
import { Neighbours } from './neighbours.js';
import { DhcpSocket, interfaceAddress, type Peer } from './netif.js';
import { Pool } from './pool.js';
import { replyDestination } from './reply.js';
import type { DhcpServerOptions, DhcpStats } from './types.js';

interface Listener {
  socket: DhcpSocket;
  iface: string | null;
  pool: Pool | null;
  pxePort: boolean;
  /** Our address on `iface`, re-read at most once a second (addresses may change under us). */
  address: { value: string | null; at: number };
}

const ADDRESS_TTL_MS = 1000;
/** At most one warning per interval about replies the kernel refused (no route to a bogus ciaddr...). */
const SEND_FAILED_LOG_MS = 10_000;
/** Socket receive buffer: about 2 s of a 10,000-node boot storm (see netif.ts, receiveBuffer). */
const RECEIVE_BUFFER = 4 * 1024 * 1024;

export class DhcpServer {
  private readonly log: Logger;
  private readonly pools: Pool[];
  private readonly engine: DhcpEngine;
  private listeners: Listener[] = [];
  /** Requests being handled, and who waits for them to finish (close). */
  private inflight = 0;
  private drained: (() => void) | null = null;
  private closed = false;
  private unwatch: (() => void) | null = null;
  private readonly neighbours = new Neighbours();
  private sendFailures = { count: 0, loggedAt: -Infinity };

  constructor(private readonly opts: DhcpServerOptions) {
    if (opts.mode !== 'server' && opts.mode !== 'proxy') throw new TypeError(`dhcp mode must be server or proxy, not ${String(opts.mode)}`);
    if (!(opts.leaseTime > 0)) throw new TypeError('dhcp lease time must be positive');
    this.log = opts.logger;
    this.pools = opts.pools.map((p) => new Pool(p));
    if (opts.mode === 'server' && this.pools.length === 0) throw new TypeError('dhcp server mode needs at least one pool');
    this.engine = new DhcpEngine(opts, this.pools, () => this.serverIds());
  }

  get stats(): DhcpStats {
    return this.engine.stats;
  }

  /** Each pool's size and the addresses of its range held now (a lease not expired, or declined). */
  poolUsage(now = Date.now()): Array<{ network: string; size: number; inUse: number }> {
    return this.pools.map((p) => ({ network: p.options.network, size: p.size, inUse: this.engine.table.inUse(p, now) }));
  }

  /** Number of leases held in memory (bound, offered, released and quarantined). */
  get leaseCount(): number {
    return this.engine.table.size;
  }

  /** Loads the persisted leases, then binds the sockets. */
  async listen(): Promise<void> {
    // Other servers' claims (a shared lease database) from now on, then everything known so far.
    this.unwatch = this.opts.leases.onLeaseChange?.((c) => (c.kind === 'reload' ? void this.reloadLeases() : this.engine.remote(c))) ?? null;
    this.engine.load(await this.opts.leases.listLeases(), await this.opts.leases.listDeclined());
    const ifaces = new Map<string | null, Pool | null>();
    ifaces.set(this.opts.interface, this.opts.mode === 'server' ? this.pools[0]! : null);
    if (this.opts.mode === 'server') for (const p of this.pools.slice(1)) if (p.options.interface && !ifaces.has(p.options.interface)) ifaces.set(p.options.interface, p);
    try {
      for (const [iface, pool] of ifaces) {
        await this.bind(iface, pool, this.opts.port ?? SERVER_PORT, false);
        if (this.opts.mode === 'proxy') await this.bind(iface, null, this.opts.proxyPort ?? PXE_PORT, true);
      }
    } catch (err) {
      await this.close();
      throw err;
    }
    this.log.info({ mode: this.opts.mode, interfaces: [...ifaces.keys()], leases: this.engine.table.size }, 'dhcp server listening');
  }

  private async bind(iface: string | null, pool: Pool | null, port: number, pxePort: boolean): Promise<void> {
    const address = this.opts.listen ?? '0.0.0.0';
    let socket: DhcpSocket;
    try {
      socket = DhcpSocket.open({
        address,
        port,
        iface,
        receiveBuffer: RECEIVE_BUFFER,
        // The first batch comes in a later turn of the event loop, once `l` below exists.
        onMessage: (msg, from) => this.receive(l, msg, from),
        onError: (code) => {
          this.stats.errors++;
          this.log.error({ err: code, iface }, 'dhcp socket error');
        },
        onSendFailed: this.sendFailed,
      });
    } catch (err) {
      // An interface that cannot be used says so itself (netif.ts); a port that cannot be bound is said here.
      if ((err as Error).message.startsWith('dhcp interface')) throw err;
      throw new Error(`dhcp: cannot listen on ${address}:${port}${iface ? ` (${iface})` : ''}: ${(err as Error).message}`, { cause: err });
    }
    const l: Listener = { socket, iface, pool, pxePort, address: { value: null, at: 0 } };
    this.listeners.push(l);
    this.log.debug({ iface, port, rcvbuf: l.socket.rcvbuf }, 'dhcp socket receive buffer');
  }

  /** Our identifiers, rebuilt at most as often as the addresses are re-read (every REQUEST asks). */
  private ids: { value: Set<string>; at: number } = { value: new Set(), at: -Infinity };

  private serverIds(): Set<string> {
    const now = Date.now();
    if (now - this.ids.at <= ADDRESS_TTL_MS) return this.ids.value;
    const ids = new Set<string>();
    if (this.opts.serverAddress) ids.add(this.opts.serverAddress);
    for (const l of this.listeners) {
      const a = this.addressOf(l);
      if (a) ids.add(a);
    }
    this.ids = { value: ids, at: now };
    return ids;
  }

  private addressOf(l: Listener): string | null {
    if (!l.iface) return null;
    const now = Date.now();
    if (now - l.address.at > ADDRESS_TTL_MS) l.address = { value: interfaceAddress(l.iface), at: now };
    return l.address.value;
  }

  private receive(l: Listener, msg: Buffer, rinfo: Peer): void {
    this.stats.received++;
    let req: DhcpPacket;
    try {
      req = decodePacket(msg);
    } catch (err) {
      this.stats.malformed++;
      this.opts.observer?.malformed?.(err instanceof DhcpDecodeError ? err.failure : 'bad-option');
      this.log.debug({ peer: `${rinfo.address}:${rinfo.port}`, reason: err instanceof DhcpDecodeError ? err.reason : String(err) }, 'dropped malformed dhcp packet');
      return;
    }
    if (req.op !== 1) {
      this.stats.ignored++;
      this.opts.observer?.dropped?.('not-request');
      return;
    }
    this.opts.observer?.received?.(getMessageType(req));
    const serverId = this.addressOf(l) ?? this.opts.serverAddress ?? '0.0.0.0';
    const arrival: Arrival = { iface: l.iface, serverId, pool: l.pool };
    void this.serve(l, req, arrival, rinfo, this.opts.observer?.replied ? performance.now() : 0);
  }

  /** Answers one request; never rejects. No closures per packet: a boot storm allocates enough. */
  private async serve(l: Listener, req: DhcpPacket, arrival: Arrival, rinfo: Peer, arrived: number): Promise<void> {
    this.inflight++;
    try {
      const reply = this.opts.mode === 'proxy' ? await this.engine.handleProxy(req, arrival, l.pxePort) : await this.engine.handle(req, arrival);
      if (reply && !this.closed) {
        this.send(l, req, reply, rinfo);
        const replied = this.opts.observer?.replied;
        if (replied) replied(getMessageType(reply) ?? 0, (performance.now() - arrived) / 1000);
      }
    } catch (err) {
      this.stats.errors++;
      this.opts.observer?.dropped?.('error');
      this.log.error({ err, peer: rinfo.address }, 'dhcp request failed');
    } finally {
      this.done();
    }
  }

  private done(): void {
    if (--this.inflight === 0 && this.drained) this.drained();
  }

  private send(l: Listener, req: DhcpPacket, reply: DhcpPacket, rinfo: Peer): void {
    // proxyDHCP requests on 4011 are answered where they came from (PXE spec).
    let to = l.pxePort ? { address: rinfo.address, port: rinfo.port } : replyDestination(req, reply, this.opts.clientPort ?? CLIENT_PORT, this.opts.port ?? SERVER_PORT);
    // A ciaddr the kernel would have to ARP for first: broadcast, never queue behind ARP (neighbours.ts).
    if (!l.pxePort && req.giaddr === '0.0.0.0' && to.address === req.ciaddr && !this.neighbours.deliverable(to.address, l.iface)) {
      this.stats.broadcastInstead++;
      to = { address: '255.255.255.255', port: to.port };
    }
    l.socket.sendPacket(reply, to.port, to.address);
  }

  /**
   * Replies the kernel refused in one flush (no route to a made-up ciaddr...): counted, and warned
   * about once in a while (the errno's name and the address), never per packet.
   */
  private readonly sendFailed = (failed: number, code: string, to: string): void => {
    this.stats.errors += failed;
    const f = this.sendFailures;
    f.count += failed;
    const now = Date.now();
    if (now - f.loggedAt < SEND_FAILED_LOG_MS) return;
    this.log.warn({ err: code, to, failed: f.count }, 'sending dhcp reply failed');
    f.loggedAt = now;
  };

  /** After the store lost track of changes (a lost database connection): every lease read again. */
  private async reloadLeases(): Promise<void> {
    try {
      this.engine.reload(await this.opts.leases.listLeases(), await this.opts.leases.listDeclined());
    } catch (err) {
      this.log.warn({ err: String(err) }, 'dhcp: reading the leases again failed');
    }
  }

  /** Stops receiving, lets requests in flight finish, and makes every lease durable. */
  async close(): Promise<void> {
    this.unwatch?.();
    this.unwatch = null;
    this.closed = true;
    for (const l of this.listeners) l.socket.close();
    this.listeners = [];
    if (this.inflight > 0) await new Promise<void>((r) => (this.drained = r));
    await this.opts.leases.flush();
  }
}
