/**
 * The DHCP socket and the interfaces it serves. Node's dgram cannot tie a socket to one interface
 * nor force its receive buffer, so the socket is made by the native addon (src/native/udp.c) with
 * every option set before bind(); its datagrams go in batches through src/native/dhcpio.c
 * (recvmmsg, sendmmsg) rather than one JavaScript call and one system call each. SO_BINDTOIFINDEX
 * needs root or CAP_NET_RAW, like binding port 67 needs CAP_NET_BIND_SERVICE.
 */
import { closeSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { nativeAddon, type DhcpHandle } from '../../native/index.js';
import { encodedSize, encodePacketInto, ipToUint32, type DhcpPacket } from '../../protocol/dhcp/packet.js';
import { intToIp } from './pool.js';

/** The kernel's index of an interface, or a clear error when it does not exist. */
export function interfaceIndex(name: string): number {
  if (!/^[\w.:@-]{1,15}$/.test(name)) throw new Error(`dhcp interface ${JSON.stringify(name)}: not an interface name`);
  try {
    return Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim());
  } catch {
    throw new Error(`dhcp interface ${name}: no such network interface`);
  }
}

/** The first IPv4 address of an interface, or null. */
export function interfaceAddress(name: string): string | null {
  const list = networkInterfaces()[name] ?? [];
  return list.find((a) => a.family === 'IPv4')?.address ?? null;
}

export interface DhcpSocketOptions {
  address: string;
  port: number;
  /** Receive only from this interface, and send replies only by it. */
  iface?: string | null;
  /**
   * Receive buffer wanted, bytes: SO_RCVBUFFORCE as root, else SO_RCVBUF capped by
   * net.core.rmem_max. The default 208 KiB holds about 100 DHCP packets, 50 ms of a boot storm at
   * 2,000 DORA/s: a GC pause or a batch of registry writes would drop the rest, and each dropped
   * DISCOVER costs its client a 4 s retransmission.
   */
  receiveBuffer?: number;
  /** Each datagram received, a view of the batch it came in (keep it as long as needed: never reused). */
  onMessage(msg: Buffer, from: Peer): void;
  /** A receive failed (the socket stays open): the errno's name. */
  onError(code: string): void;
  /** Datagrams the kernel refused to send in one flush (no route to a made-up ciaddr...), the last one's errno name and destination. */
  onSendFailed(failed: number, code: string, to: string): void;
}

/** Where a datagram came from or goes to: an IPv4 literal and a port. */
export interface Peer {
  address: string;
  port: number;
}

/** Datagrams per recvmmsg in dhcpio.c (BATCH), so the meta array holds a batch. */
const BATCH = 32;
/** Replies queued before a flush is forced (the rest of a turn goes in the next sendmmsg). */
const SEND_MAX = 16;
const SEND_BYTES = 256 * 1024;

/**
 * The DHCP socket: bound by the native addon (udp.c) with SO_REUSEADDR, SO_BROADCAST and every
 * option set before bind(), polled on this event loop by dhcpio.c. Datagrams arrive in batches (one
 * recvmmsg, one call into JavaScript) and replies leave in batches: `send` queues, and the queue is
 * written with one sendmmsg at the end of the event loop's turn (setImmediate), or at once when full.
 */
export class DhcpSocket {
  readonly rcvbuf: number;
  readonly port: number;
  private readonly handle: DhcpHandle;
  private readonly recvMeta = new Uint32Array(3 * BATCH);
  private readonly sendMeta = new Uint32Array(3 * SEND_MAX);
  private readonly sendBuf = Buffer.allocUnsafeSlow(SEND_BYTES);
  private queued = 0;
  private queuedBytes = 0;
  private flushing: NodeJS.Immediate | null = null;
  private closed = false;

  private constructor(made: { fd: number; rcvbuf: number; port: number }, private readonly opts: DhcpSocketOptions) {
    this.rcvbuf = made.rcvbuf;
    this.port = made.port;
    this.handle = nativeAddon().dhcpOpen(made.fd, this.recvMeta, this.batch, opts.onError);
  }

  /** A socket bound to `address:port`, and the receive buffer the kernel granted. */
  static open(opts: DhcpSocketOptions): DhcpSocket {
    const { address, port, iface = null, receiveBuffer = 0 } = opts;
    const ifindex = iface ? interfaceIndex(iface) : 0;
    let made: { fd: number; rcvbuf: number; port: number };
    try {
      made = nativeAddon().udpSocket(address, port, ifindex, receiveBuffer);
    } catch (err) {
      if ((err as { syscall?: string }).syscall === 'setsockopt SO_BINDTOIFINDEX') {
        throw new Error(`dhcp interface ${iface}: cannot bind the socket to it (needs root or CAP_NET_RAW): ${(err as Error).message}`, { cause: err });
      }
      throw err;
    }
    try {
      return new DhcpSocket(made, opts);
    } catch (err) {
      closeSync(made.fd);
      throw err;
    }
  }

  private readonly batch = (buf: Buffer, count: number): void => {
    const meta = this.recvMeta;
    let off = 0;
    for (let i = 0; i < count && !this.closed; i++) {
      const len = meta[3 * i]!;
      const from: Peer = { address: intToIp(meta[3 * i + 1]!), port: meta[3 * i + 2]! };
      this.opts.onMessage(buf.subarray(off, off + len), from);
      off += len;
    }
  };

  /** Queues a datagram to `address` (an IPv4 literal), sent at the end of this turn of the event loop. */
  send(data: Uint8Array, port: number, address: string): void {
    const m = this.slot(data.length, port, address);
    if (m < 0) return;
    this.sendBuf.set(data, this.queuedBytes);
    this.queue(m, data.length);
  }

  /** Queues a DHCP packet as `send` does, encoded straight into the send buffer (no buffer of its own). */
  sendPacket(p: DhcpPacket, port: number, address: string): void {
    const size = encodedSize(p);
    const m = this.slot(size, port, address);
    if (m < 0) return;
    this.queue(m, encodePacketInto(p, this.sendBuf, this.queuedBytes, size));
  }

  /**
   * Makes room for a datagram of `size` octets to `address:port` (flushing what is queued when the
   * queue is full) and fills in its entry; the entry's index in sendMeta, or -1 when it cannot be
   * sent (closed, a bad address, too large: told to onSendFailed).
   */
  private slot(size: number, port: number, address: string): number {
    if (this.closed) return -1;
    let to: number;
    try {
      to = ipToUint32(address);
    } catch {
      this.opts.onSendFailed(1, 'EINVAL', `${address}:${port}`);
      return -1;
    }
    if (size > SEND_BYTES) {
      this.opts.onSendFailed(1, 'EMSGSIZE', `${address}:${port}`);
      return -1;
    }
    if (this.queued === SEND_MAX || this.queuedBytes + size > SEND_BYTES) this.flush();
    const m = 3 * this.queued;
    this.sendMeta[m + 1] = to;
    this.sendMeta[m + 2] = port;
    return m;
  }

  /** The datagram of entry `m`, `length` octets at the end of the send buffer, is queued. */
  private queue(m: number, length: number): void {
    this.sendMeta[m] = length;
    this.queued++;
    this.queuedBytes += length;
    this.flushing ??= setImmediate(this.flush);
  }

  /** Writes what is queued now. */
  readonly flush = (): void => {
    if (this.flushing) clearImmediate(this.flushing);
    this.flushing = null;
    if (this.queued === 0 || this.closed) return;
    const count = this.queued;
    this.queued = 0;
    this.queuedBytes = 0;
    const refused = nativeAddon().dhcpSend(this.handle, this.sendBuf, this.sendMeta, count);
    if (refused) {
      const m = 3 * refused.index;
      this.opts.onSendFailed(refused.failed, refused.code, `${intToIp(this.sendMeta[m + 1]!)}:${this.sendMeta[m + 2]!}`);
    }
  };

  /** Sends what is queued, stops receiving and closes the descriptor. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    nativeAddon().dhcpClose(this.handle);
  }
}
