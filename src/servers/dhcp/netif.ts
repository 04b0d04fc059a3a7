/**
 * The DHCP socket and the interfaces it serves. Node's dgram cannot tie a socket to one interface
 * nor force its receive buffer, so the socket is made by the native addon (src/native/udp.c) with
 * every option set before bind(), then adopted by dgram (`socket.bind({ fd })`): from there on it
 * is an ordinary dgram socket. SO_BINDTOIFINDEX needs root or CAP_NET_RAW, like binding port 67
 * needs CAP_NET_BIND_SERVICE.
 */
import dgram, { type Socket, type SocketOptions } from 'node:dgram';
import { closeSync, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { nativeAddon } from '../../native/index.js';

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
  /** dgram options of the adopted socket (`lookup`...); `type` is always udp4. */
  dgram?: Omit<SocketOptions, 'type'>;
}

/** A socket bound to `address:port` with SO_REUSEADDR and SO_BROADCAST, and the receive buffer the kernel granted. */
export async function openDhcpSocket({ address, port, iface = null, receiveBuffer = 0, dgram: options }: DhcpSocketOptions): Promise<{ socket: Socket; rcvbuf: number }> {
  const ifindex = iface ? interfaceIndex(iface) : 0;
  let made: { fd: number; rcvbuf: number };
  try {
    made = nativeAddon().udpSocket(address, port, ifindex, receiveBuffer);
  } catch (err) {
    if ((err as { syscall?: string }).syscall === 'setsockopt SO_BINDTOIFINDEX') {
      throw new Error(`dhcp interface ${iface}: cannot bind the socket to it (needs root or CAP_NET_RAW): ${(err as Error).message}`, { cause: err });
    }
    throw err;
  }
  const socket = dgram.createSocket({ ...options, type: 'udp4' });
  try {
    // Adopting a descriptor fails only synchronously (it is not a UDP socket): then it is still ours.
    await new Promise<void>((resolve) => socket.bind({ fd: made.fd }, resolve));
  } catch (err) {
    closeSync(made.fd);
    throw err;
  }
  return { socket, rcvbuf: made.rcvbuf };
}
