/**
 * Zero-copy transfers: Node has no sendfile(2), so a large body is handed to a small helper process
 * that calls it (Python's os.sendfile, from Debian's python3) on the response's own socket and the
 * already open file, both passed as inherited descriptors. The kernel moves page-cache pages to the
 * socket; nothing crosses into JavaScript. Node writes the headers first and the helper only starts
 * once they have left, so the bytes on the wire stay in order. Without python3, or beyond
 * `maxConcurrent` helpers, the caller falls back to body-pump.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { delimiter, join } from 'node:path';

// fd 3: the client socket (non-blocking, shared with Node: wait for writability); fd 4: the file.
const HELPER = `
import os, select, sys
out, f = 3, 4
off, end, idle = int(sys.argv[1]), int(sys.argv[1]) + int(sys.argv[2]), float(sys.argv[3])
sent, code = 0, 0
try:
    while off < end:
        try:
            n = os.sendfile(out, f, off, min(end - off, 1 << 30))
        except BlockingIOError:
            if not select.select([], [out], [], idle)[1]:
                code = 3
                break
            continue
        if n == 0:
            code = 4
            break
        off += n
        sent += n
except OSError:
    code = 2
sys.stdout.write(str(sent))
sys.exit(code)
`;

/**
 * The system's python3 (Debian's /usr/bin/python3 first: a version manager's shim on PATH, such as
 * pyenv's, costs a shell and hundreds of ms per start), else the first on PATH; null when none.
 */
export function findPython(path = process.env.PATH ?? ''): string | null {
  for (const dir of ['/usr/bin', ...path.split(delimiter)]) {
    if (!dir) continue;
    const p = join(dir, 'python3');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  return null;
}

export interface SendfileOptions {
  python: string;
  /** Helpers running at once; more transfers use the JavaScript path. Default 64. */
  maxConcurrent?: number;
  /** Bodies smaller than this use the JavaScript path (a process start costs more). Default 8 MiB. */
  minBytes?: number;
  /** Seconds the socket may stay unwritable before the helper gives up. */
  idleSeconds: number;
}

export class SendfileHelper {
  #running = 0;
  readonly #children = new Set<ChildProcess>();
  readonly #python: string;
  readonly #max: number;
  readonly #min: number;
  readonly #idle: number;

  constructor({ python, maxConcurrent = 64, minBytes = 8 << 20, idleSeconds }: SendfileOptions) {
    this.#python = python;
    this.#max = maxConcurrent;
    this.#min = minBytes;
    this.#idle = idleSeconds;
  }

  get running(): number {
    return this.#running;
  }

  /** Ends every transfer in flight (the helpers hold a copy of their sockets: closing ours is not enough). */
  killAll(): void {
    for (const c of this.#children) c.kill('SIGKILL');
  }

  /** Whether a body of `length` bytes should go through a helper now. */
  takes(length: number): boolean {
    return length >= this.#min && this.#running < this.#max;
  }

  /** Sends `length` bytes of `fd` from `start` after the headers; resolves with the bytes sent. */
  async send(res: ServerResponse, fd: number, start: number, length: number): Promise<number> {
    const socket = res.socket as Socket | null;
    if (!socket || socket.destroyed) return 0;
    this.#running++;
    // Node's idle timer sees no traffic while the helper writes: suspend it for the transfer.
    const timeout = (socket as Socket & { timeout?: number }).timeout ?? 0;
    socket.setTimeout(0);
    try {
      // child_process closes a Socket given as stdio when the helper exits: this connection ends with
      // the transfer, so say so (a node fetches one image per connection anyway).
      res.setHeader('Connection', 'close');
      res.shouldKeepAlive = false;
      res.flushHeaders();
      while (socket.writableLength > 0 && !socket.destroyed) await new Promise((r) => socket.once('drain', r));
      if (socket.destroyed) return 0;
      // -I -S: no environment, no user site, no site module: the helper starts in a few ms.
      const child = spawn(this.#python, ['-I', '-S', '-c', HELPER, String(start), String(length), String(this.#idle)], {
        stdio: ['ignore', 'pipe', 'ignore', socket, fd],
      });
      this.#children.add(child);
      child.once('close', () => this.#children.delete(child));
      let out = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => {
        child.once('error', () => resolve(-1));
        child.once('close', (c) => resolve(c));
      });
      const sent = Number(out) || 0;
      if (code === 0 && sent === length) res.end();
      else res.destroy();
      return sent;
    } finally {
      this.#running--;
      if (!socket.destroyed && timeout > 0) socket.setTimeout(timeout);
    }
  }
}
