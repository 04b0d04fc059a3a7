/**
 * The admin API's listener: HTTP, or HTTPS with the configured certificate. It serves an express
 * application and knows nothing else. Slow or broken clients cannot hold it: headers within 10 s,
 * the whole request within 30 s; event streams stay open as long as their client reads.
 */
import { createServer as createHttp, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type express from 'express';
import type { Logger } from '../log/logger.js';

export interface ApiServerOptions {
  listen: string;
  port: number;
  /** PEM text of the certificate (chain) and key; null: plain HTTP. */
  tls: { cert: Buffer; key: Buffer } | null;
  /** Takes HTTP upgrades (the console WebSockets); without it they are refused. */
  upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

export class ApiServer {
  #server: Server | null = null;
  /** Responses being written (event streams stay here as long as their client reads). */
  readonly #responses = new Set<ServerResponse>();
  /** Upgraded connections (WebSockets): no longer the HTTP server's, closed by close() all the same. */
  readonly #upgraded = new Set<Duplex>();

  constructor(
    private readonly app: express.Express,
    readonly options: ApiServerOptions,
    private readonly log: Logger,
  ) {}

  get port(): number {
    return (this.#server?.address() as AddressInfo | null)?.port ?? this.options.port;
  }

  get url(): string {
    return `${this.options.tls ? 'https' : 'http'}://${this.options.listen}:${this.port}`;
  }

  async listen(): Promise<void> {
    const { tls, listen, port } = this.options;
    const server: Server = tls ? createHttps({ cert: tls.cert, key: tls.key }, this.app) : createHttp(this.app);
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.keepAliveTimeout = 5_000;
    server.on('request', (_req, res: ServerResponse) => {
      this.#responses.add(res);
      res.once('close', () => this.#responses.delete(res));
    });
    server.on('clientError', (err: Error & { code?: string }, socket) => {
      this.log.debug({ err: err.message, code: err.code, addr: (socket as Socket).remoteAddress }, 'api: bad request dropped');
      // RFC 6585: headers too large is 431; a request not sent in time is 408; anything else 400.
      const status =
        err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      if (socket.writable && !socket.destroyed) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      else socket.destroy();
    });
    const upgrade = this.options.upgrade;
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!upgrade) return void socket.destroy();
      this.#upgraded.add(socket);
      socket.once('close', () => this.#upgraded.delete(socket));
      upgrade(req, socket, head);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, listen, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
  }

  /** Stops accepting; requests in flight get 5 s, then every connection (event streams too) is closed. */
  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // Event streams never end by themselves: end them now, the clients reconnect to the next daemon.
    for (const res of this.#responses) if (String(res.getHeader('content-type') ?? '').startsWith('text/event-stream')) res.socket?.destroy();
    for (const s of this.#upgraded) s.destroy();
    const timer = setTimeout(() => server.closeAllConnections(), 5_000);
    await closed;
    clearTimeout(timer);
  }
}
