/**
 * The storm simulator's client for large bodies (stage-1 kernel and initramfs, the image): HTTP/1.1
 * GETs over a plain TCP socket reading into one shared 1 MiB buffer (`onread`), counting the body
 * and keeping nothing. Node's http client costs a stream chunk and a Buffer per 64 KiB read; tens of
 * gigabytes of a storm through it made the simulator, not the server, the bottleneck on two cores.
 * Bodies must carry Content-Length (files always do, on provisiond and on nginx).
 */
import net from 'node:net';

const SHARED = Buffer.allocUnsafe(1 << 20);

export interface BulkAnswer {
  status: number;
  /** Body bytes received. */
  bytes: number;
}

interface Pending {
  resolve: (a: BulkAnswer) => void;
  reject: (e: Error) => void;
  head: Buffer[];
  status: number;
  left: number;
  bytes: number;
  inBody: boolean;
}

/** One keep-alive connection from `local` to `host:port`, one request at a time. */
export class BulkConnection {
  private pending: Pending | null = null;
  private closed = false;
  /** Whether a response was ever received on it (a request that fails on a reused connection may be retried). */
  used = false;

  private constructor(private readonly sock: net.Socket) {
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => {
      this.closed = true;
      this.fail(new Error('socket hang up'));
    });
  }

  static open(host: string, port: number, local: string, timeoutMs: number): Promise<BulkConnection> {
    return new Promise((resolve, reject) => {
      let conn: BulkConnection | null = null;
      const sock = net.connect({
        host,
        port,
        localAddress: local,
        onread: { buffer: SHARED, callback: (n: number, buf: Uint8Array) => (conn?.onData(buf as Buffer, n), true) },
      });
      sock.setTimeout(timeoutMs, () => sock.destroy(new Error(`no data for ${timeoutMs / 1000} s`)));
      sock.once('connect', () => {
        conn = new BulkConnection(sock);
        resolve(conn);
      });
      sock.once('error', (e) => {
        if (!conn) reject(e);
      });
    });
  }

  get alive(): boolean {
    return !this.closed && !this.sock.destroyed;
  }

  get(host: string, path: string, headers: Record<string, string> = {}): Promise<BulkAnswer> {
    if (!this.alive) return Promise.reject(new Error('socket hang up'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject, head: [], status: 0, left: 0, bytes: 0, inBody: false };
      const extra = Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      this.sock.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n${extra}\r\n`);
    });
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }

  private fail(e: Error): void {
    const p = this.pending;
    this.pending = null;
    p?.reject(e);
  }

  private onData(buf: Buffer, n: number): void {
    const p = this.pending;
    if (!p) return;
    let off = 0;
    if (!p.inBody) {
      p.head.push(Buffer.from(buf.subarray(0, n)));
      const all = Buffer.concat(p.head);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = all.subarray(0, end).toString('latin1');
      p.status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (!length) return this.fail(new Error(`HTTP ${p.status} without Content-Length`));
      p.left = Number(length[1]);
      p.inBody = true;
      this.used = true;
      // What came after the head in this read is body.
      const bodyHere = all.length - (end + 4);
      p.head = [];
      off = n - bodyHere;
    }
    const take = Math.min(n - off, p.left);
    p.left -= take;
    p.bytes += take;
    if (p.left === 0) {
      this.pending = null;
      p.resolve({ status: p.status, bytes: p.bytes });
    }
  }
}
