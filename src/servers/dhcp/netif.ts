/**
 * Tying a UDP socket to one network interface. Node's dgram cannot, so the socket gets
 * SO_BINDTOIFINDEX (Linux >= 5.7; the integer form of SO_BINDTODEVICE) through the `sockopt`
 * addon. It needs root or CAP_NET_RAW, like binding port 67 needs CAP_NET_BIND_SERVICE.
 */
import type { Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { networkInterfaces } from 'node:os';

const SOL_SOCKET = 1;
const SO_BINDTOIFINDEX = 62;
/** SO_RCVBUF past net.core.rmem_max; needs CAP_NET_ADMIN (root), which the DHCP server has. */
const SO_RCVBUFFORCE = 33;

type SetSockOpt = (socket: { _handle: { fd: number } }, level: number, name: number, value: number) => void;
let setsockopt: SetSockOpt | null = null;

function loadSockopt(): SetSockOpt {
  if (!setsockopt) setsockopt = (createRequire(import.meta.url)('sockopt') as { setsockopt: SetSockOpt }).setsockopt;
  return setsockopt;
}

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

/** The file descriptor of a bound dgram socket, read without the deprecated `_handle` getter. */
function socketFd(socket: Socket): number {
  for (const sym of Object.getOwnPropertySymbols(socket)) {
    const state = (socket as unknown as Record<symbol, { handle?: { fd?: number } }>)[sym];
    if (state && typeof state === 'object' && state.handle && typeof state.handle.fd === 'number') return state.handle.fd;
  }
  throw new Error('dhcp socket: no file descriptor (is it bound?)');
}

/** Restricts a bound socket to `ifname`: it receives only from it, and its replies leave only by it. */
export function bindToDevice(socket: Socket, ifname: string): void {
  const index = interfaceIndex(ifname);
  try {
    loadSockopt()({ _handle: { fd: socketFd(socket) } }, SOL_SOCKET, SO_BINDTOIFINDEX, index);
  } catch (err) {
    throw new Error(`dhcp interface ${ifname}: cannot bind the socket to it (needs root or CAP_NET_RAW): ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Gives a bound socket a receive buffer of `bytes` (SO_RCVBUFFORCE as root, else SO_RCVBUF capped by
 * net.core.rmem_max) and returns the size the kernel granted. The default 208 KiB holds about 100
 * DHCP packets, 50 ms of a boot storm at 2,000 DORA/s: a GC pause or a batch of registry writes
 * would drop the rest, and each dropped DISCOVER costs its client a 4 s retransmission.
 */
export function growReceiveBuffer(socket: Socket, bytes: number): number {
  try {
    loadSockopt()({ _handle: { fd: socketFd(socket) } }, SOL_SOCKET, SO_RCVBUFFORCE, bytes);
  } catch {
    try {
      socket.setRecvBufferSize(bytes);
    } catch {
      // Keep the default: a smaller buffer only means drops under a burst.
    }
  }
  return socket.getRecvBufferSize();
}
