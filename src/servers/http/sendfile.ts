/**
 * Zero-copy transfers: a large body goes out with sendfile(2) on the response's own socket, from a
 * thread of the native addon (src/native/sendfile.c): the kernel moves page-cache pages to the
 * socket, nothing crosses into JavaScript, and the event loop stays free. Node writes the headers
 * first and the thread starts once they have left, so the bytes on the wire stay in order; Node
 * writes nothing to the socket while the thread sends; then the response ends as any other and a
 * keep-alive connection goes on to its next request. Beyond `maxConcurrent` transfers, and for a
 * socket sendfile cannot write to (TLS: the bytes must be encrypted in Node), the caller uses
 * body-pump.ts.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { nativeAddon, type NativeAddon } from '../../native/index.js';

/**
 * The file descriptor of a plain TCP socket, or null. Node has no public API for it, and this is
 * the one place that reads it: `_handle` is the socket's libuv TCP handle (TCPWrap), whose `fd`
 * property is the descriptor on Unix. sendfile(2) needs the descriptor itself; the addon dup()s it,
 * so Node closing the socket meanwhile never leaves the thread writing to a reused number.
 */
function socketFd(socket: Socket): number | null {
  if ((socket as Socket & { encrypted?: boolean }).encrypted) return null;
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

export interface SendfileOptions {
  /** Transfers running at once; more use the JavaScript path. Default 64. */
  maxConcurrent?: number;
  /** Bodies smaller than this use the JavaScript path. Default 256 KiB (smaller ones are sent in one write anyway). */
  minBytes?: number;
  /** Milliseconds the socket may stay unwritable before the transfer is given up (the server's idle timeout). */
  idleMs: number;
}

export class SendfileSender {
  #running = 0;
  readonly #addon: NativeAddon;
  readonly #max: number;
  readonly #min: number;
  readonly #idleMs: number;

  /** Throws NativeBuildMissingError when the addon was not built. */
  constructor({ maxConcurrent = 64, minBytes = 256 * 1024, idleMs }: SendfileOptions) {
    if (!(idleMs > 0)) throw new TypeError(`http sendfile: idleMs must be positive, got ${idleMs}`);
    this.#addon = nativeAddon();
    this.#max = maxConcurrent;
    this.#min = minBytes;
    this.#idleMs = idleMs;
  }

  /** Transfers running now. */
  get running(): number {
    return this.#running;
  }

  /** Whether a body of `length` bytes for `res` should go through sendfile now. */
  takes(res: ServerResponse, length: number): boolean {
    return length >= this.#min && this.#running < this.#max && !!res.socket && socketFd(res.socket as Socket) !== null;
  }

  /** Sends `length` bytes of `fd` from `start` after the headers, then ends the response; resolves with the bytes sent. */
  async send(res: ServerResponse, fd: number, start: number, length: number): Promise<number> {
    const socket = res.socket as Socket | null;
    if (!socket || socket.destroyed) return 0;
    this.#running++;
    // Node's idle timer sees no traffic while the thread writes: suspend it for the transfer (the
    // thread applies the same limit to a socket that stays unwritable).
    const timeout = (socket as Socket & { timeout?: number }).timeout ?? 0;
    socket.setTimeout(0);
    try {
      res.flushHeaders();
      while (socket.writableLength > 0 && !socket.destroyed) await drainedOrClosed(socket);
      const sock = socket.destroyed ? null : socketFd(socket);
      if (sock === null) {
        res.destroy();
        return 0;
      }
      const { err, sent } = await new Promise<{ err: string | null; sent: number }>((resolve) => {
        // The server closing the connection (client gone, close() past its grace) ends the transfer.
        const cancel = () => this.#addon.sendfileCancel(handle);
        const handle = this.#addon.sendfileStart(sock, fd, start, length, this.#idleMs, (e, n) => {
          socket.off('close', cancel);
          resolve({ err: e, sent: n });
        });
        socket.once('close', cancel);
      });
      if (err === null && sent === length && !socket.destroyed) res.end();
      else res.destroy();
      return sent;
    } finally {
      this.#running--;
      if (!socket.destroyed && timeout > 0) socket.setTimeout(timeout);
    }
  }
}

function drainedOrClosed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
