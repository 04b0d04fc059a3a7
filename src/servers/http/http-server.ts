/**
 * The node-facing HTTP server: an express app on a Node http.Server with the abuse limits
 * (header size, URL length, idle and receive timeouts, per-address nodescript cap), a live
 * `update()` for config reloads (rebinding when the address changed), and a graceful `close()`
 * that stops accepting and lets transfers in flight finish within a grace period.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from '../../log/logger.js';
import { type AppState, createApp } from './app.js';
import { ChecksumCache } from './checksum-cache.js';
import { SendfileSender } from './sendfile.js';
import { Slots } from '../../util/slots.js';
import type { HttpHandlers, HttpServerOptions } from './types.js';

/** The zero-copy path, unless turned off. Throws when the native addon was not built. */
function makeSendfile(options: HttpServerOptions): SendfileSender | null {
  return options.zeroCopy === false ? null : new SendfileSender({ idleMs: options.requestTimeoutMs });
}

export class HttpServer {
  readonly #handlers: HttpHandlers;
  readonly #log: Logger;
  readonly #state: AppState;
  #server: Server | null = null;

  constructor({ options, handlers, logger }: { options: HttpServerOptions; handlers: HttpHandlers; logger: Logger }) {
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) throw new TypeError(`http: bad port ${options.port}`);
    if (options.maxScriptRequestsPerAddress < 1) throw new TypeError('http: maxScriptRequestsPerAddress must be at least 1');
    this.#handlers = handlers;
    this.#log = logger;
    this.#state = { options, checksums: new ChecksumCache(), closing: false, scriptsInFlight: new Map(), sendfile: makeSendfile(options), transfers: new Slots(options.maxTransfers ?? 0) };
  }

  /** Whether large bodies go out through sendfile(2). */
  get zeroCopy(): boolean {
    return this.#state.sendfile !== null;
  }

  /** Transfer slots held and waited for (admission control). */
  get transfers(): { active: number; waiting: number } {
    return { active: this.#state.transfers.active, waiting: this.#state.transfers.waiting };
  }

  /** Checksums of served files (the daemon drops entries when a VNFS tree changes). */
  get checksums(): ChecksumCache {
    return this.#state.checksums;
  }

  /** `host:port` actually bound (the real port when 0 was asked). */
  get address(): string {
    const a = this.#server?.address() as AddressInfo | null | undefined;
    return a ? `${a.address}:${a.port}` : `${this.#state.options.listen}:${this.#state.options.port}`;
  }

  get port(): number {
    return (this.#server?.address() as AddressInfo | null)?.port ?? this.#state.options.port;
  }

  async listen(): Promise<void> {
    this.#server = await this.#bind(this.#state.options);
  }

  async #bind(options: HttpServerOptions): Promise<Server> {
    const app = createApp(this.#state, this.#handlers, this.#log);
    const server = createServer({ maxHeaderSize: options.maxHeaderSize ?? 16 * 1024 }, app);
    server.requestTimeout = options.requestTimeoutMs;
    server.headersTimeout = Math.min(options.requestTimeoutMs, 60_000);
    // Idle timeout per socket: a transfer whose bytes keep flowing is never cut.
    server.timeout = options.requestTimeoutMs;
    server.keepAliveTimeout = 5_000;
    // A client that half-closes once its request is sent (busybox nc, uploading a capture) still
    // gets its answer: without this, Node drops the request at the client's FIN.
    (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    const accept = this.#handlers.acceptConnection;
    if (accept) {
      server.on('connection', (socket: Socket) => {
        const a = socket.remoteAddress ?? '';
        if (!accept(a.startsWith('::ffff:') ? a.slice(7) : a)) socket.destroy();
      });
    }
    server.on('clientError', (err, socket) => {
      this.#log.debug({ err: err.message, addr: (socket as Socket).remoteAddress }, 'bad http request dropped');
      const code = (err as NodeJS.ErrnoException).code;
      const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      try {
        this.#handlers.malformed?.(status);
      } catch {
        // A counter must never break the server.
      }
      if (socket.writable && !socket.destroyed) {
        const text = status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request';
        socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      } else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // A deep accept queue: a boot storm's connections arrive by the thousand (Node's default is 511;
      // the kernel caps it at net.core.somaxconn, 4096 by default). A dropped SYN costs its node 1 s or more.
      server.listen({ port: options.port, host: options.listen, backlog: 65535 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  /** Applies new options; rebinds (new socket first, then the old one closes gracefully) when the address changed. */
  async update(options: HttpServerOptions): Promise<void> {
    const old = this.#state.options;
    if ((options.zeroCopy !== false) !== (old.zeroCopy !== false)) this.#state.sendfile = makeSendfile(options);
    this.#state.transfers.resize(options.maxTransfers ?? 0);
    const rebind = old.listen !== options.listen || (old.port !== options.port && options.port !== 0);
    if (rebind && this.#server) {
      const fresh = await this.#bind(options);
      const previous = this.#server;
      this.#server = fresh;
      this.#state.options = options;
      void this.#drain(previous, options.closeGraceMs ?? 30_000);
      return;
    }
    this.#state.options = { ...options, port: old.port === 0 ? old.port : options.port };
  }

  /** Stops accepting, closes idle keep-alive connections, waits for responses in flight (bounded). */
  async close(): Promise<void> {
    this.#state.closing = true;
    const server = this.#server;
    if (!server) return;
    await this.#drain(server, this.#state.options.closeGraceMs ?? 30_000);
  }

  async #drain(server: Server, graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // Connections that finish a response while draining become idle: close them as they do.
    const sweep = setInterval(() => server.closeIdleConnections(), 100);
    const timer = setTimeout(() => {
      this.#log.warn({ graceMs }, 'http: transfers still running after the grace period are cut');
      // A sendfile transfer ends with its connection (sendfile.ts cancels it when the socket closes).
      server.closeAllConnections();
    }, graceMs);
    try {
      await closed;
    } finally {
      clearInterval(sweep);
      clearTimeout(timer);
    }
  }
}
