/**
 * The Perceus provisiond TCP protocol (port 987), so nodes still running the Perceus C client are
 * served unchanged. On connect the server sends `# PERCEUSD START`; the client sends one line:
 *   `<state> nodeid=<MAC> [nodename=...]`  -> the node's script, then `# PROVISIOND END`, close
 *   `ping <token>`                          -> `<token>`, close (Perceus's daemon_ping)
 *   `log <message>`                         -> logged (and put on the node's timeline), close
 * A request line longer than 4 KiB, or none within the timeout, closes the connection.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Logger } from '../../log/logger.js';
import { parseMac } from '../../util/mac.js';

/** How a connection ended: the request it carried, or why it was dropped. */
export type PerceusOutcome = 'script' | 'ping' | 'log' | 'bad-request' | 'too-long' | 'timeout' | 'closed';
export const PERCEUS_OUTCOMES: readonly PerceusOutcome[] = ['script', 'ping', 'log', 'bad-request', 'too-long', 'timeout', 'closed'];

export interface PerceusHandlers {
  /** The node's script for `state`; throw to refuse (the message goes to the node as a shell comment). */
  script(req: { state: string; nodeid: string; nodename: string | null; addr: string; signal: AbortSignal }): Promise<Readable>;
  log(req: { msg: string; addr: string }): void;
  /** Every connection, once: what it asked for, or why nothing was asked (the daemon's metrics). */
  outcome?(outcome: PerceusOutcome): void;
}

export interface PerceusServerOptions {
  listen: string;
  port: number;
  /** ms to wait for the request line; default 10 s. */
  timeoutMs?: number;
}

const MAX_LINE = 4096;

/** Parses the request line; null when it is not one of the three forms. */
export function parsePerceusRequest(line: string): { kind: 'ping'; token: string } | { kind: 'log'; msg: string } | { kind: 'script'; state: string; nodeid: string; nodename: string | null } | null {
  const trimmed = line.replace(/\r$/, '').trim();
  if (trimmed === 'ping' || trimmed.startsWith('ping ')) return { kind: 'ping', token: trimmed.slice(5).trim() };
  if (trimmed.startsWith('log ')) return { kind: 'log', msg: trimmed.slice(4) };
  const [state, ...rest] = trimmed.split(/\s+/);
  if (!state || !/^\w+$/.test(state)) return null;
  const fields = new Map(rest.map((kv) => [kv.split('=')[0]!, kv.slice(kv.indexOf('=') + 1)] as const));
  const nodeid = parseMac(fields.get('nodeid') ?? '');
  if (!nodeid) return null;
  return { kind: 'script', state, nodeid, nodename: fields.get('nodename') ?? null };
}

export class PerceusServer {
  #server: Server | null = null;
  readonly #sockets = new Set<Socket>();

  constructor(private readonly opts: { options: PerceusServerOptions; handlers: PerceusHandlers; logger: Logger }) {}

  get address(): string {
    const a = this.#server?.address() as AddressInfo | null | undefined;
    return a ? `${a.address}:${a.port}` : `${this.opts.options.listen}:${this.opts.options.port}`;
  }

  get port(): number {
    return (this.#server?.address() as AddressInfo | null)?.port ?? this.opts.options.port;
  }

  async listen(): Promise<void> {
    const server = createServer((socket) => this.#serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.options.port, this.opts.options.listen, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
  }

  #serve(socket: Socket): void {
    const { logger } = this.opts;
    const addr = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    this.#sockets.add(socket);
    const abort = new AbortController();
    let counted = false;
    const count = (outcome: PerceusOutcome) => {
      if (counted) return;
      counted = true;
      try {
        this.opts.handlers.outcome?.(outcome);
      } catch {
        // A counter must never break a connection.
      }
    };
    socket.on('close', () => {
      this.#sockets.delete(socket);
      count('closed');
      abort.abort(new Error('client went away'));
    });
    socket.on('error', (err) => logger.debug({ addr, err: err.message }, 'perceus: connection error'));
    socket.setTimeout(this.opts.options.timeoutMs ?? 10_000, () => {
      count('timeout');
      socket.destroy();
    });
    socket.write('# PERCEUSD START\n');
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl === -1) {
        if (buf.length > MAX_LINE) {
          count('too-long');
          socket.destroy();
        }
        return;
      }
      socket.off('data', onData);
      socket.setTimeout(0);
      const line = buf.slice(0, nl);
      const req = parsePerceusRequest(line);
      count(req ? req.kind : 'bad-request');
      void this.#answer(socket, req, line, addr, abort.signal).catch((err: unknown) => {
        logger.warn({ addr, err: String(err) }, 'perceus: request failed');
        socket.destroy();
      });
    };
    socket.on('data', onData);
  }

  async #answer(socket: Socket, req: ReturnType<typeof parsePerceusRequest>, line: string, addr: string, signal: AbortSignal): Promise<void> {
    const { handlers, logger } = this.opts;
    if (!req) {
      logger.debug({ addr, line: line.slice(0, 200) }, 'perceus: bad request line');
      socket.end('# provisiond: bad request (expected "<state> nodeid=<MAC>", "ping <token>" or "log <message>")\n');
      return;
    }
    if (req.kind === 'ping') return void socket.end(`${req.token}\n`);
    if (req.kind === 'log') {
      handlers.log({ msg: req.msg, addr });
      return void socket.end();
    }
    let body: Readable;
    try {
      body = await handlers.script({ state: req.state, nodeid: req.nodeid, nodename: req.nodename, addr, signal });
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      socket.end(`echo 'provisiond: ${msg.replaceAll("'", '')}' >&2\nexit 1\n# PROVISIOND END\n`);
      return;
    }
    for await (const chunk of body) {
      if (!socket.write(chunk as Buffer)) await new Promise((r) => socket.once('drain', r));
      if (socket.destroyed) return;
    }
    socket.end('# PROVISIOND END\n');
  }

  /** Stops accepting; connections in flight finish within `graceMs`. */
  async close(graceMs = 10_000): Promise<void> {
    const server = this.#server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const timer = setTimeout(() => {
      for (const s of this.#sockets) s.destroy();
    }, graceMs);
    await closed;
    clearTimeout(timer);
  }
}
