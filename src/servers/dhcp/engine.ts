/**
 * The DHCP state machine (RFC 2131 section 4.3): a decoded request in, a reply packet (or null:
 * stay silent) out. Sockets are server.ts's business; decisions are the handler's.
 */
import { MessageType, Opt, messageTypeName } from '../../protocol/dhcp/constants.js';
import { getClientArch, getClientUuid, getHwaddr, getIpOption, getMessageType, getStringOption, getUserClasses } from '../../protocol/dhcp/options.js';
import type { DhcpPacket } from '../../protocol/dhcp/packet.js';
import type { Logger } from '../../log/logger.js';
import { buildReply } from './reply.js';
import { intToIp, ipToInt, LeaseTable, type DhcpLease, type Pool } from './pool.js';
import { pingAnswers } from './ping.js';
import { isClaimLost, type DhcpClientInfo, type DhcpClaimLost, type DhcpDecision, type DhcpDropReason, type DhcpEvent, type DhcpLeaseChange, type DhcpServerOptions, type DhcpStats } from './types.js';

/**
 * The least lease time (s) a renewal may be ACKed for from its committed lease while the database
 * is out of reach: below it the client is better left to retry (it rebinds, then starts over).
 */
const MIN_COMMITTED_ACK_S = 10;
/** How long an offered address is held for the client before others may get it. */
const OFFER_HOLD_MS = 60_000;
/** Addresses tried per DISCOVER when ping check finds them in use, so a storm cannot stall. */
const MAX_PING_TRIES = 4;
const EXHAUSTED_LOG_MS = 10_000;

/** Where a request arrived: the interface, our address there, its pool (null in proxy mode). */
export interface Arrival {
  iface: string | null;
  serverId: string;
  pool: Pool | null;
}

export class DhcpEngine {
  readonly table = new LeaseTable();
  readonly stats: DhcpStats = { received: 0, malformed: 0, ignored: 0, offers: 0, acks: 0, naks: 0, exhausted: 0, errors: 0, broadcastInstead: 0, uncommitted: 0, claimsLost: 0, ackedCommittedOnly: 0 };
  private readonly log: Logger;
  private readonly lastExhaustedLog = new Map<Pool, number>();

  constructor(
    private readonly opts: DhcpServerOptions,
    private readonly pools: Pool[],
    /** All our server identifiers: a REQUEST naming another is for another server. */
    private readonly ourIds: () => Set<string>,
  ) {
    this.log = opts.logger;
  }

  /** The pool for a request: by giaddr when relayed, else the one of the receiving interface. */
  poolFor(req: DhcpPacket, arrival: Arrival): Pool | null {
    if (req.giaddr !== '0.0.0.0') {
      const g = ipToInt(req.giaddr);
      return this.pools.find((p) => p.contains(g)) ?? null;
    }
    return arrival.pool;
  }

  clientInfo(req: DhcpPacket, hwaddr: string, arrival: Arrival, proxy: boolean): DhcpClientInfo {
    return {
      hwaddr,
      messageType: messageTypeName(getMessageType(req) ?? 0),
      arch: getClientArch(req),
      userClasses: getUserClasses(req),
      vendorClass: getStringOption(req, Opt.VENDOR_CLASS),
      uuid: getClientUuid(req),
      hostname: getStringOption(req, Opt.HOSTNAME),
      relay: req.giaddr === '0.0.0.0' ? null : req.giaddr,
      interface: arrival.iface,
      proxy,
    };
  }

  private ignore(hwaddr: string, why: string, reason: DhcpDropReason): null {
    this.stats.ignored++;
    this.opts.observer?.dropped?.(reason);
    this.log.debug({ hwaddr }, `ignored: ${why}`);
    return null;
  }

  private event(e: DhcpEvent): void {
    try {
      this.opts.handler.event?.(e);
    } catch (err) {
      this.log.warn({ err }, 'dhcp event handler failed');
    }
  }

  /**
   * The lease of each machine as last known committed (loaded from the store, heard of from it, or
   * written here): what an ACK may promise while the store cannot commit anything new.
   */
  private readonly committed = new Map<string, { address: string; expires: number; state: DhcpLease['state'] }>();

  /** The store's leases and declined addresses, as read from it at start or after a lost connection. */
  load(leases: DhcpLease[], declined: Parameters<LeaseTable['load']>[1]): void {
    this.table.load(leases, declined);
    for (const l of leases) this.committed.set(l.hwaddr, { address: l.address, expires: l.expires, state: l.state });
  }

  /**
   * The store's leases and declined addresses read again after a lost connection to it: they
   * replace what was held, so a lease deleted or moved meanwhile (notifications being lost with the
   * connection) is gone here too. A claim of this server committed between the read and this call
   * is forgotten with the rest until its next change: harmless, as the store's claim, not this
   * table, keeps an address from a second client.
   */
  reload(leases: DhcpLease[], declined: Parameters<LeaseTable['load']>[1]): void {
    this.table.clear();
    this.committed.clear();
    this.load(leases, declined);
  }

  /**
   * Commits a lease change; true once it is durable. False when the store could not commit it: the
   * reply that promised it (an ACK) must not go out. Counted, and logged once in a while.
   */
  private async commit(hwaddr: string, write: Promise<void>, keys: readonly string[], lease?: DhcpLease): Promise<boolean> {
    const err = await this.settle(hwaddr, write, keys, lease);
    if (err !== null) this.notCommitted(hwaddr, err);
    return err === null;
  }

  /**
   * Null once `write` is committed (`lease` then known committed); the error otherwise. Either way
   * `keys` (counted by `writing` when the write began) are no longer being committed.
   */
  private async settle(hwaddr: string, write: Promise<void>, keys: readonly string[], lease?: DhcpLease): Promise<unknown> {
    try {
      await write;
      if (lease) this.committed.set(hwaddr, { address: lease.address, expires: lease.expires, state: lease.state });
      return null;
    } catch (err) {
      return err ?? new Error('commit failed');
    } finally {
      this.written(keys);
    }
  }

  /** A reply withheld because its lease change could not be committed: counted, logged once in a while. */
  private notCommitted(hwaddr: string, err: unknown): void {
    this.stats.uncommitted++;
    this.opts.observer?.dropped?.('uncommitted');
    const now = Date.now();
    if (now - this.lastCommitFailLog >= EXHAUSTED_LOG_MS) {
      this.lastCommitFailLog = now;
      this.log.error({ err, hwaddr, uncommitted: this.stats.uncommitted }, 'dhcp lease not committed: no reply sent (the client will retry)');
    }
  }

  private lastCommitFailLog = -Infinity;
  private lastCommittedOnlyLog = -Infinity;

  /** Hardware addresses and addresses whose lease change this server is committing (see remote()). */
  private readonly inflight = new Map<string, number>();

  /**
   * `keys` are being committed from now until `settle` (or `commit`) of their write ends, which
   * every caller awaits: no closure and no promise per write for the bookkeeping.
   */
  private writing(keys: readonly string[]): readonly string[] {
    for (const k of keys) this.inflight.set(k, (this.inflight.get(k) ?? 0) + 1);
    return keys;
  }

  private written(keys: readonly string[]): void {
    for (const k of keys) {
      const n = (this.inflight.get(k) ?? 1) - 1;
      if (n <= 0) this.inflight.delete(k);
      else this.inflight.set(k, n);
    }
  }

  /**
   * A change of the lease store made elsewhere (another server on the shared database), or the
   * echo of our own. A change of a lease or address this server is committing is older than that
   * commit (which wins or fails as a lost claim): skipped.
   */
  remote(change: DhcpLeaseChange): void {
    if (change.kind === 'reload') return;
    if (change.kind === 'declined') {
      if (this.inflight.has(change.address)) return;
      if (change.declined) this.table.decline(change.address, change.declined.expires);
      else this.table.undecline(change.address);
      return;
    }
    if (change.lease) this.committed.set(change.hwaddr, { address: change.lease.address, expires: change.lease.expires, state: change.lease.state });
    else this.committed.delete(change.hwaddr);
    if (this.inflight.has(change.hwaddr)) return;
    const own = this.table.byHwaddr(change.hwaddr);
    if (!change.lease) {
      // Deleted in the store (a decline, an admin): our own offer to it stands.
      if (own && own.state !== 'offered') this.table.delete(change.hwaddr);
      return;
    }
    if (this.inflight.has(change.lease.address)) return;
    const l = change.lease;
    if (own && own.address === l.address && own.state === l.state && own.expires === l.expires) return;
    this.table.set({ ...l });
  }

  /** Handles one server-mode request. */
  async handle(req: DhcpPacket, arrival: Arrival): Promise<DhcpPacket | null> {
    const type = getMessageType(req);
    const hwaddr = getHwaddr(req);
    if (type === null) return this.ignore(hwaddr ?? '?', 'BOOTP request without a DHCP message type', 'not-dhcp');
    if (!hwaddr) return this.ignore('?', 'no usable hardware address', 'no-hardware-address');
    const pool = this.poolFor(req, arrival);
    if (!pool) return this.ignore(hwaddr, req.giaddr !== '0.0.0.0' ? `no pool contains relay ${req.giaddr}` : 'no pool on this interface', 'no-pool');
    switch (type) {
      case MessageType.DISCOVER:
        return this.discover(req, hwaddr, arrival, pool);
      case MessageType.REQUEST:
        return this.request(req, hwaddr, arrival, pool);
      case MessageType.RELEASE:
        return this.release(req, hwaddr);
      case MessageType.DECLINE:
        return this.decline(req, hwaddr);
      case MessageType.INFORM:
        return this.inform(req, hwaddr, arrival, pool);
      default:
        return this.ignore(hwaddr, `message type ${type} is not for a server`, 'not-for-server');
    }
  }

  // Not async functions: each layer of those is one more promise per packet (the callers await).
  private decide(req: DhcpPacket, hwaddr: string, arrival: Arrival): Promise<DhcpDecision> {
    return this.opts.handler.decide(this.clientInfo(req, hwaddr, arrival, false));
  }

  private reserved(addr: number, hwaddr: string): Promise<boolean> | boolean {
    const r = this.opts.handler.addressReserved;
    return r ? r(intToIp(addr), hwaddr) : false;
  }

  /** The address for `hwaddr` in `pool`, or null when the pool is exhausted. */
  private async allocate(hwaddr: string, pool: Pool, fixed: string | null, requested: string | null): Promise<number | null> {
    const now = Date.now();
    if (fixed) {
      const f = ipToInt(fixed);
      if (pool.contains(f)) return f;
      this.log.warn({ hwaddr, ipaddr: fixed, pool: pool.options.network }, 'fixed address is outside the pool the request came from; using the pool');
    }
    const own = this.table.byHwaddr(hwaddr);
    if (own && pool.inRange(ipToInt(own.address)) && !(await this.reserved(ipToInt(own.address), hwaddr))) return ipToInt(own.address);
    if (requested) {
      const r = ipToInt(requested);
      if (pool.inRange(r) && this.table.isFreeFor(r, hwaddr, now) && !(await this.reserved(r, hwaddr))) return r;
    }
    for (let tries = 0; tries < MAX_PING_TRIES; tries++) {
      const addr = this.table.candidate(pool, hwaddr, now, () => false, this.opts.allocator === 'random');
      if (addr === null) return null;
      if (await this.reserved(addr, hwaddr)) {
        // Held by a node's fixed address: mark it so the scan does not stop on it again.
        this.table.decline(intToIp(addr), now + this.opts.leaseTime * 1000);
        continue;
      }
      if (this.opts.pingCheck && (await pingAnswers(intToIp(addr)))) {
        this.log.warn({ address: intToIp(addr) }, 'address answers ping although free: quarantined');
        // Not offered either way; committed in the background (no reply waits for it).
        void this.quarantine(intToIp(addr));
        continue;
      }
      return addr;
    }
    return null;
  }

  /** Keeps `address` from everyone for a lease time; resolves to whether that was committed. */
  private quarantine(address: string): Promise<boolean> {
    const expires = Date.now() + this.opts.leaseTime * 1000;
    this.table.decline(address, expires);
    const keys = this.writing([address]);
    return this.commit(address, this.opts.leases.putDeclined({ address, expires }), keys);
  }

  private async discover(req: DhcpPacket, hwaddr: string, arrival: Arrival, pool: Pool): Promise<DhcpPacket | null> {
    const d = await this.decide(req, hwaddr, arrival);
    if (!d.answer) return this.ignore(hwaddr, d.reason, 'not-answered');
    let addr: number | null = null;
    // allocate() awaits (reserved addresses, ping): another DISCOVER may have been offered the same
    // address meanwhile (the random allocator draws it again). Checked with nothing awaited before
    // the offer goes in the table.
    for (let tries = 0; tries < MAX_PING_TRIES; tries++) {
      addr = await this.allocate(hwaddr, pool, d.address ?? null, getIpOption(req, Opt.REQUESTED_ADDRESS));
      if (addr === null || d.address || this.table.isFreeFor(addr, hwaddr, Date.now())) break;
      addr = null;
    }
    if (addr === null) {
      this.stats.exhausted++;
      this.opts.observer?.exhausted?.(pool.options.network);
      this.opts.observer?.dropped?.('pool-exhausted');
      // One warning per pool per interval, with the count: a boot storm must not flood the log.
      const now = Date.now();
      if (now - (this.lastExhaustedLog.get(pool) ?? 0) >= EXHAUSTED_LOG_MS) {
        this.lastExhaustedLog.set(pool, now);
        this.log.warn({ hwaddr, pool: pool.options.network, exhausted: this.stats.exhausted }, 'dhcp pool exhausted: no address to offer (raise the range)');
      }
      this.event({ hwaddr, stage: 'exhausted', address: null, msg: `pool ${pool.options.network} exhausted`, ok: false });
      return null;
    }
    const address = intToIp(addr);
    const own = this.table.byHwaddr(hwaddr);
    if (!own || own.address !== address) this.table.set({ hwaddr, address, expires: Date.now() + OFFER_HOLD_MS, state: 'offered' });
    this.stats.offers++;
    this.event({ hwaddr, stage: 'offer', address, msg: `offered ${address}${d.boot ? ` boot ${d.boot.file}` : ''}`, ok: true });
    return buildReply(req, { type: MessageType.OFFER, serverId: arrival.serverId, yiaddr: address, pool, leaseTime: this.opts.leaseTime, hostname: d.hostname, boot: d.boot });
  }

  private nak(req: DhcpPacket, hwaddr: string, arrival: Arrival, why: string): DhcpPacket {
    this.stats.naks++;
    this.log.info({ hwaddr, why }, 'dhcp nak');
    this.event({ hwaddr, stage: 'nak', address: null, msg: why, ok: false });
    return buildReply(req, { type: MessageType.NAK, serverId: arrival.serverId, message: why });
  }

  private async request(req: DhcpPacket, hwaddr: string, arrival: Arrival, pool: Pool): Promise<DhcpPacket | null> {
    const serverId = getIpOption(req, Opt.SERVER_ID);
    const requested = getIpOption(req, Opt.REQUESTED_ADDRESS);
    const own = this.table.byHwaddr(hwaddr);
    if (serverId && !this.ourIds().has(serverId)) {
      // The client chose another server's offer: free what we offered, and never answer.
      if (own?.state === 'offered') this.table.delete(hwaddr);
      return this.ignore(hwaddr, `request for server ${serverId}`, 'other-server');
    }
    const wanted = requested ?? (req.ciaddr !== '0.0.0.0' ? req.ciaddr : null);
    if (!wanted) return this.ignore(hwaddr, 'request names no address', 'bad-request');
    const w = ipToInt(wanted);
    const d = await this.decide(req, hwaddr, arrival);
    if (!d.answer) return this.ignore(hwaddr, d.reason, 'not-answered');
    const fixed = d.address && pool.contains(ipToInt(d.address)) ? d.address : null;
    if (fixed ? fixed !== wanted : !pool.inRange(w)) {
      // Selecting our offer, or a known client asking for an address it cannot have: NAK. A
      // client we know nothing of, asking for an address off our network, is another server's.
      if (serverId || own || fixed || !pool.contains(w)) return this.nak(req, hwaddr, arrival, `address ${wanted} is not yours`);
      return this.ignore(hwaddr, `init-reboot for ${wanted} outside the pool`, 'other-network');
    }
    const now = Date.now();
    if (!fixed && (!this.table.isFreeFor(w, hwaddr, now) || (own && own.address !== wanted && own.state !== 'released' && own.expires > now && own.state !== 'offered') || (await this.reserved(w, hwaddr)))) {
      return this.nak(req, hwaddr, arrival, `address ${wanted} is not available`);
    }
    // The checks above awaited (a registry lookup may be real I/O): another request may have taken
    // the address meanwhile. Check again with nothing awaited before the table is written.
    if (!fixed && !this.table.isFreeFor(w, hwaddr, Date.now())) return this.nak(req, hwaddr, arrival, `address ${wanted} is not available`);
    const lease: DhcpLease = { hwaddr, address: wanted, expires: now + this.opts.leaseTime * 1000, state: 'bound', hostname: d.hostname ?? getStringOption(req, Opt.HOSTNAME), clientId: req.options.get(Opt.CLIENT_ID)?.toString('hex') ?? null, uuid: getClientUuid(req) };
    // In the table at once, so that no one else is offered the address meanwhile; acknowledged only
    // once committed: an ACK is a promise that survives a crash of this server.
    this.table.set(lease);
    // Known committed before this write: what a renewal may be answered with if the write fails.
    const before = this.committed.get(hwaddr);
    let lost: DhcpClaimLost | null = null;
    const keys = this.writing([hwaddr, wanted]);
    const committed = this.opts.leases.putLease(lease, { exclusive: !fixed }).catch((err: unknown) => {
      if (!isClaimLost(err)) throw err;
      lost = err;
    });
    // On the timeline beside its offer (one row per exchange); a commit that fails is recorded after it.
    this.event({ hwaddr, stage: 'ack', address: wanted, msg: `bound ${wanted} for ${this.opts.leaseTime} s${d.boot ? ` boot ${d.boot.file}` : ''}`, ok: true });
    const failed = await this.settle(hwaddr, committed, keys, lease);
    if (failed !== null) {
      // The store is out of reach (or failing). A renewal or INIT-REBOOT of a lease already
      // committed is ACKed for the time that lease has left, no longer: the ACK promises nothing
      // that is not durable, so the address cannot be handed out twice whatever happens to this
      // server. The client renews again at half of it. A new lease is not ACKed (the client retries).
      const left = before && before.address === wanted && before.state === 'bound' ? Math.floor((before.expires - Date.now()) / 1000) : 0;
      if (left >= MIN_COMMITTED_ACK_S) {
        if (this.table.byHwaddr(hwaddr) === lease) this.table.set({ ...lease, expires: before!.expires });
        this.stats.ackedCommittedOnly++;
        const at = Date.now();
        if (at - this.lastCommittedOnlyLog >= EXHAUSTED_LOG_MS) {
          this.lastCommittedOnlyLog = at;
          this.log.warn({ err: String(failed), hwaddr, ackedCommittedOnly: this.stats.ackedCommittedOnly }, 'dhcp lease store out of reach: renewals acked for the time their committed lease has left, new leases wait');
        }
        this.event({ hwaddr, stage: 'ack-committed', address: wanted, msg: `renewal of ${wanted} not committed (database out of reach): acked for the ${left} s its lease has left`, ok: true });
        return buildReply(req, { type: MessageType.ACK, serverId: arrival.serverId, yiaddr: wanted, pool, leaseTime: left, hostname: d.hostname, boot: d.boot });
      }
      this.notCommitted(hwaddr, failed);
      this.event({ hwaddr, stage: 'uncommitted', address: wanted, msg: `lease of ${wanted} not committed: no ack sent`, ok: false });
      return null;
    }
    if (lost !== null) {
      // Another server's client holds the address (a claim in the shared database won first):
      // the holder's lease goes in the table, this client starts over.
      const holder = (lost as DhcpClaimLost).lease;
      // Nothing of ours was written: what was committed for this client before still is.
      if (before) this.committed.set(hwaddr, before);
      else this.committed.delete(hwaddr);
      if (holder) this.committed.set(holder.hwaddr, { address: holder.address, expires: holder.expires, state: holder.state });
      if (this.table.byHwaddr(hwaddr) === lease) this.table.delete(hwaddr);
      if (holder) this.table.set(holder);
      this.stats.claimsLost++;
      return this.nak(req, hwaddr, arrival, `address ${wanted} is held by ${holder?.hwaddr ?? 'another machine'} (claimed on another server)`);
    }
    // A change heard meanwhile may have taken the entry out: the committed lease stands.
    if (!this.table.byHwaddr(hwaddr)) this.table.set(lease);
    this.stats.acks++;
    return buildReply(req, { type: MessageType.ACK, serverId: arrival.serverId, yiaddr: wanted, pool, leaseTime: this.opts.leaseTime, hostname: d.hostname, boot: d.boot });
  }

  private async release(req: DhcpPacket, hwaddr: string): Promise<null> {
    const own = this.table.byHwaddr(hwaddr);
    if (own && own.address === req.ciaddr) {
      // Kept as this client's address (stable across reboots), but free for others when needed:
      // once committed, so that a crash cannot hand the address out twice.
      const lease: DhcpLease = { ...own, state: 'released', expires: Date.now() };
      const keys = this.writing([hwaddr, own.address]);
      if (!(await this.commit(hwaddr, this.opts.leases.putLease(lease), keys, lease))) return null;
      // Unless the client asked again meanwhile (its newer binding stands).
      if (this.table.byHwaddr(hwaddr) === own) this.table.set(lease);
      this.event({ hwaddr, stage: 'release', address: own.address, msg: `released ${own.address}`, ok: true });
    }
    return null;
  }

  private async decline(req: DhcpPacket, hwaddr: string): Promise<null> {
    const address = getIpOption(req, Opt.REQUESTED_ADDRESS);
    const own = this.table.byHwaddr(hwaddr);
    if (!address || !own || own.address !== address) return this.ignore(hwaddr, 'decline of an address not leased to it', 'bad-request');
    // The address is quarantined at once (taken from everyone: nothing is handed out early); the
    // client's binding goes with the same commit, and is never answered from memory again.
    this.committed.delete(hwaddr);
    const keys = this.writing([hwaddr, address]);
    const dropped = this.opts.leases.deleteLease(hwaddr);
    if (this.table.byHwaddr(hwaddr) === own) this.table.delete(hwaddr);
    const [ok] = await Promise.all([this.commit(hwaddr, dropped, keys), this.quarantine(address)]);
    if (!ok) return null;
    this.log.warn({ hwaddr, address }, 'client declined its address (in use elsewhere): quarantined');
    this.event({ hwaddr, stage: 'decline', address, msg: `declined ${address}: in use elsewhere`, ok: false });
    return null;
  }

  private async inform(req: DhcpPacket, hwaddr: string, arrival: Arrival, pool: Pool): Promise<DhcpPacket | null> {
    if (req.ciaddr === '0.0.0.0') return this.ignore(hwaddr, 'inform without ciaddr', 'bad-request');
    const d = await this.decide(req, hwaddr, arrival);
    if (!d.answer) return this.ignore(hwaddr, d.reason, 'not-answered');
    this.stats.acks++;
    this.event({ hwaddr, stage: 'inform', address: req.ciaddr, msg: `configuration for ${req.ciaddr}`, ok: true });
    return buildReply(req, { type: MessageType.ACK, serverId: arrival.serverId, pool, hostname: d.hostname, boot: d.boot });
  }

  /** proxyDHCP: boot information only, for PXE clients (vendor class PXEClient). */
  async handleProxy(req: DhcpPacket, arrival: Arrival, onPxePort: boolean): Promise<DhcpPacket | null> {
    const type = getMessageType(req);
    const hwaddr = getHwaddr(req);
    if (!hwaddr || type === null) return this.ignore(hwaddr ?? '?', 'not a dhcp request', 'not-dhcp');
    const vc = getStringOption(req, Opt.VENDOR_CLASS) ?? '';
    if (!vc.startsWith('PXEClient') && !vc.startsWith('HTTPClient')) return this.ignore(hwaddr, 'proxy mode answers PXE clients only', 'not-pxe');
    const expected = onPxePort ? [MessageType.REQUEST, MessageType.INFORM] : [MessageType.DISCOVER];
    if (!expected.includes(type)) return this.ignore(hwaddr, `proxy mode ignores ${messageTypeName(type)} on this port`, 'not-for-server');
    const d = await this.opts.handler.decide(this.clientInfo(req, hwaddr, arrival, true));
    if (!d.answer) return this.ignore(hwaddr, d.reason, 'not-answered');
    if (!d.boot) return this.ignore(hwaddr, 'no boot information for it', 'not-answered');
    this.stats[onPxePort ? 'acks' : 'offers']++;
    this.event({ hwaddr, stage: onPxePort ? 'proxy-ack' : 'proxy-offer', address: null, msg: `boot ${d.boot.file}`, ok: true });
    return buildReply(req, { type: onPxePort ? MessageType.ACK : MessageType.OFFER, serverId: arrival.serverId, boot: d.boot, proxy: true });
  }
}
