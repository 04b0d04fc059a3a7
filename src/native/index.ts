/**
 * The native code, built by node-gyp at `npm ci` from binding.gyp into build/Release/: the addon
 * (the DHCP socket and its batched datagrams, zero-copy sendfile) and two helper executables (the
 * nodescript spawner, the TFTP pump). Nothing is compiled at run time: a missing build is an
 * installation error, reported with what to run. A leaf module: it imports nothing of the daemon.
 */
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** build/Release/ at the repository root, from src/native/ and from dist/native/ alike. */
const RELEASE = fileURLToPath(new URL('../../build/Release/', import.meta.url));

/** The native build is missing or unusable. */
export class NativeBuildMissingError extends Error {
  constructor(what: string, options?: { cause?: unknown }) {
    super(`${what} is not built (${RELEASE}): run npm ci, or npm run build:native`, options);
  }
}

/** The addon's functions (src/native/addon.c lists them; each C file documents its own). */
export interface NativeAddon {
  /** A bound IPv4 UDP socket with SO_REUSEADDR and SO_BROADCAST (udp.c); `rcvbuf` is what the kernel granted. */
  udpSocket(address: string, port: number, ifindex: number, rcvbuf: number): { fd: number; rcvbuf: number; port: number };
  /**
   * Polls a bound UDP socket on this event loop (dhcpio.c): `onBatch(buf, count)` per recvmmsg, the
   * datagrams one after the other in `buf`, `meta[3i..3i+2]` the length, source address (host
   * order) and port of each (at least 3 * 32 entries; overwritten by the next batch).
   */
  dhcpOpen(fd: number, meta: Uint32Array, onBatch: (buf: Buffer, count: number) => void, onError: (code: string) => void): DhcpHandle;
  /** sendmmsg of `count` datagrams laid out in `buf`, `meta` as for dhcpOpen (destination); what the kernel refused (the last one's errno name and index), or null. */
  dhcpSend(handle: DhcpHandle, buf: Buffer, meta: Uint32Array, count: number): { failed: number; code: string; index: number } | null;
  /** Stops polling and closes the descriptor. */
  dhcpClose(handle: DhcpHandle): void;
  /** sendfile(2) of `length` bytes from `offset` on a thread (sendfile.c); `cb` once, on this thread. */
  sendfileStart(sock: number, file: number, offset: number, length: number, idleMs: number, cb: (err: string | null, sent: number) => void): SendfileHandle;
  /** Ends a transfer in flight; its callback follows with an error. */
  sendfileCancel(handle: SendfileHandle): void;
}

/** Opaque: a socket polled by dhcpOpen. */
export type DhcpHandle = { readonly __dhcp: unique symbol };

/** Opaque: a transfer started by sendfileStart. */
export type SendfileHandle = { readonly __sendfile: unique symbol };

let addon: NativeAddon | undefined;

/** The addon, loaded on first use. Throws NativeBuildMissingError when it was not built. */
export function nativeAddon(): NativeAddon {
  if (!addon) {
    try {
      addon = createRequire(import.meta.url)(`${RELEASE}provisiond.node`) as NativeAddon;
    } catch (err) {
      throw new NativeBuildMissingError('the native addon (provisiond.node)', { cause: err });
    }
  }
  return addon;
}

function executable(name: string): string {
  const path = `${RELEASE}${name}`;
  try {
    accessSync(path, constants.X_OK);
  } catch (err) {
    throw new NativeBuildMissingError(`the native helper ${name}`, { cause: err });
  }
  return path;
}

/** Path of the nodescript spawner executable (src/native/spawner.c). */
export function spawnerPath(): string {
  return executable('provisiond-spawner');
}

/** Path of the TFTP pump executable (src/native/pump.c). */
export function tftpPumpPath(): string {
  return executable('provisiond-tftp-pump');
}
