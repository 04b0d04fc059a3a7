/**
 * The express application: the node-facing routes, the limits, and the one error handler that turns
 * HttpError into a status with a reason. Paths (kept stable, documented in the README):
 *   GET /nodescripts/<state>?nodeid=<MAC>   GET /boot/<MAC>.ipxe   GET /boot/<file>
 *   GET /files/<path> (and /<vnfs.prefix>/<path>)   POST|GET /nodes/<MAC>/events   GET /healthz
 *   GET /nodes/<MAC>/actions?wait=<S> (the ready agent's long-poll)   PUT|POST /nodes/<MAC>/upload/<TOKEN>
 *   GET /cluster/vnfs/<NAME>/<FILE> (another server fetching an image, signed: daemon/peer-auth.ts)
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { stat } from 'node:fs/promises';
import type { Logger } from '../../log/logger.js';
import { parseMac } from '../../util/mac.js';
import { type Slot, Slots } from '../../util/slots.js';
import { ChecksumCache } from './checksum-cache.js';
import { HttpError } from './errors.js';
import { sendFile } from './file-sender.js';
import { locateExported, realExported, safeSegments } from './safe-path.js';
import type { SendfileSender } from './sendfile.js';
import type { HttpHandlers, HttpRoute, HttpServerOptions } from './types.js';

/** Mutable state the routes read, so a config reload applies without rebuilding the app. */
export interface AppState {
  options: HttpServerOptions;
  checksums: ChecksumCache;
  closing: boolean;
  /** Nodescript requests in flight per client address. */
  scriptsInFlight: Map<string, number>;
  /** The zero-copy path, or null (turned off). */
  sendfile: SendfileSender | null;
  /** Slots for large transfers (`maxTransfers`): admission control in a boot storm. */
  transfers: Slots;
}

/**
 * Waits for a transfer slot when `file` is large (`admissionMinBytes`) and every slot is taken: the
 * client's request is held, its connection open with no idle timeout, and served in arrival order
 * (iPXE and busybox wget wait for the answer; a refusal would lose an iPXE download, which it does
 * not retry). Null when the file is small or no limit is set, `gone` when the client left while
 * waiting; the caller releases the slot once its response ended or was cut.
 */
async function admit(state: AppState, req: Request, res: Response, file: string, priority: 0 | 1): Promise<Slot | null | 'gone'> {
  if (state.transfers.limit === 0) return null;
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch {
    return null; // the sender answers 404 itself
  }
  if (size < (state.options.admissionMinBytes ?? DEFAULT_ADMISSION_MIN_BYTES)) return null;
  const gone = new AbortController();
  const onClose = () => gone.abort(new Error('client went away'));
  // A client that gives up while waiting closes its side: the socket ends before any response.
  res.once('close', onClose);
  req.socket.once('end', onClose);
  const idle = req.socket.timeout ?? 0;
  req.socket.setTimeout(0);
  let slot: Slot;
  try {
    slot = await state.transfers.acquire(gone.signal, priority);
  } catch {
    req.socket.destroy(); // half-closed by the client: nothing more will be asked on it
    return 'gone';
  } finally {
    if (!req.socket.destroyed && idle > 0) req.socket.setTimeout(idle);
  }
  res.off('close', onClose);
  req.socket.off('end', onClose);
  return slot;
}

/** Files smaller than this are sent without a transfer slot (a checksum sidecar, an iPXE loader). */
export const DEFAULT_ADMISSION_MIN_BYTES = 1 << 20;

const STATE = /^\w+$/;
/** The longest long-poll of a ready agent, seconds. */
const MAX_ACTION_WAIT = 120;

/** The client's IPv4 address (`::ffff:` mapping removed). */
export function clientAddress(req: Request): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

function rawPath(req: Request): string {
  const url = req.originalUrl;
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** The node credential a request presents: `Authorization: Bearer X` (busybox wget sends it with --header) or `X-Provisiond-Credential: X`. */
export function presentedCredential(req: Request): string | null {
  const auth = req.headers.authorization;
  const bearer = typeof auth === 'string' && /^Bearer\s+/i.test(auth) ? auth.replace(/^Bearer\s+/i, '').trim() : '';
  const header = req.headers['x-provisiond-credential'];
  const value = bearer || (typeof header === 'string' ? header.trim() : '');
  return value === '' ? null : value;
}

function macParam(value: unknown, what: string): string {
  const mac = typeof value === 'string' ? parseMac(value) : null;
  if (!mac) throw new HttpError(400, `bad ${what}: not a hardware address: ${JSON.stringify(value ?? '')}`);
  return mac;
}

/** Which of the server's routes a request is for: a few fixed names, whatever the client asked. */
export function routeOf(path: string, filePrefixes: readonly string[]): HttpRoute {
  const first = path.split('/')[1] ?? '';
  if (first === 'nodescripts') return 'nodescripts';
  if (first === 'boot') return /^\/boot\/[^/]+\.ipxe$/.test(path) ? 'ipxe-script' : 'boot';
  if (first === 'nodes' && path.endsWith('/events')) return 'events';
  if (first === 'nodes' && path.endsWith('/actions')) return 'actions';
  if (first === 'nodes' && path.split('/')[3] === 'upload') return 'upload';
  if (first === 'healthz') return 'healthz';
  if (first === 'cluster') return 'peer';
  if (filePrefixes.includes(first)) return 'files';
  return 'other';
}

/**
 * Reports every request once its response ends (or its connection closes first): the route, the
 * status, the body bytes (as the file sender counted them, else the bytes written to the socket,
 * headers included) and the time taken.
 */
function observe(state: AppState, report: NonNullable<HttpHandlers['request']>): express.RequestHandler {
  return (req, res, next) => {
    const began = performance.now();
    const written = req.socket.bytesWritten;
    const route = routeOf(rawPath(req), state.options.filePrefixes);
    res.once('close', () => {
      const sent = res.locals.sentBytes as number | undefined;
      try {
        report({ route, method: req.method, status: res.statusCode, complete: res.writableFinished, bytes: sent ?? Math.max(0, req.socket.bytesWritten - written), durationMs: performance.now() - began });
      } catch {
        // A counter must never break a response.
      }
    });
    next();
  };
}

export function createApp(state: AppState, handlers: HttpHandlers, log: Logger): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  if (handlers.request) app.use(observe(state, handlers.request));

  app.use((req, res, next) => {
    if (state.closing) res.setHeader('Connection', 'close');
    if (req.originalUrl.length > (state.options.maxUrlLength ?? 4096)) return next(new HttpError(414, 'url too long'));
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: state.closing ? 'stopping' : 'ok', ...handlers.health?.() });
  });

  app.get('/nodescripts/:state', async (req, res) => {
    const st = req.params.state;
    if (!STATE.test(st)) throw new HttpError(400, `bad provisionary state ${JSON.stringify(st)}: must match ^\\w+$`);
    const nodeid = req.query.nodeid === undefined || req.query.nodeid === '' ? null : macParam(req.query.nodeid, 'nodeid');
    const addr = clientAddress(req);
    const cap = state.options.maxScriptRequestsPerAddress;
    const inFlight = state.scriptsInFlight.get(addr) ?? 0;
    if (inFlight >= cap) throw new HttpError(429, `too many nodescript requests from ${addr} at once (limit ${cap})`, { headers: { 'Retry-After': '2' } });
    state.scriptsInFlight.set(addr, inFlight + 1);
    const abort = new AbortController();
    // In a boot storm a node may wait minutes in the engine's queue with nothing to send: the socket
    // idle timeout must not cut it (each script has its own timeout; a vanished node is seen by TCP).
    const idle = req.socket.timeout ?? 0;
    req.socket.setTimeout(0);
    req.socket.setKeepAlive(true, 30_000);
    res.once('finish', () => {
      if (!req.socket.destroyed && idle > 0) req.socket.setTimeout(idle);
    });
    res.once('close', () => {
      const n = (state.scriptsInFlight.get(addr) ?? 1) - 1;
      if (n <= 0) state.scriptsInFlight.delete(addr);
      else state.scriptsInFlight.set(addr, n);
      if (!res.writableFinished) abort.abort(new Error('client went away'));
    });
    const body = await handlers.nodescript({ state: st, nodeid, addr, signal: abort.signal, credential: presentedCredential(req) });
    res.status(200);
    res.setHeader('Content-Type', 'text/x-shellscript; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.flushHeaders(); // the node sees the response start at once, then each script's output as it comes
    try {
      await pipeline(body, res);
    } catch (err) {
      if (!abort.signal.aborted) log.warn({ addr, state: st, nodeid, err: String(err) }, 'nodescript stream failed');
      res.destroy();
    }
  });

  app.get(/^\/boot\/(.+)$/, async (req, res) => {
    const addr = clientAddress(req);
    const segments = safeSegments(rawPath(req).slice('/boot/'.length));
    const name = segments.join('/');
    if (segments.length === 1 && name.endsWith('.ipxe')) {
      const base = name.slice(0, -'.ipxe'.length);
      const nodeid = parseMac(base);
      if (nodeid || base === 'boot' || req.query.mac !== undefined) {
        const script = await handlers.ipxeScript({ nodeid: nodeid ?? (req.query.mac !== undefined ? macParam(req.query.mac, 'mac') : null), addr });
        res.status(200).type('text/plain').setHeader('Cache-Control', 'no-store');
        res.send(script);
        return;
      }
    }
    const file = await handlers.bootFile({ segments, addr });
    // Priority 1: a stage-1 waits behind the images of nodes further along in their boot.
    const slot = await admit(state, req, res, file, 1);
    if (slot === 'gone') return;
    try {
      const report = await sendFile(req, res, file, { chunkSize: state.options.chunkSize, sendfile: state.sendfile });
      res.locals.sentBytes = report.bytes;
      handlers.transfer?.({ ...report, route: 'boot', addr, url: req.originalUrl, waitedMs: slot?.queued ? slot.waitedMs : 0 });
    } finally {
      slot?.release();
    }
  });

  const getfile = async (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const path = rawPath(req);
    const first = path.split('/')[1] ?? '';
    if (!state.options.filePrefixes.includes(first)) return next();
    const addr = clientAddress(req);
    // The hook runs before the file is looked for: it may refuse it (a protected file, whether it exists
    // or not) or make it (a VNFS image built when first asked for).
    const located = locateExported(path.slice(first.length + 2), state.options.trees, state.options.fallbackTree);
    await handlers.beforeGetfile?.({ tree: located.tree.name, relative: located.relative, file: join(located.tree.dir, ...located.relative.split('/')), addr, credential: presentedCredential(req) });
    const target = realExported(located);
    const slot = await admit(state, req, res, target.file, 0);
    if (slot === 'gone') return;
    try {
      const report = await sendFile(req, res, target.file, { checksums: state.checksums, chunkSize: state.options.chunkSize, sendfile: state.sendfile });
      res.locals.sentBytes = report.bytes;
      handlers.transfer?.({ ...report, route: 'files', addr, url: req.originalUrl, waitedMs: slot?.queued ? slot.waitedMs : 0 });
    } finally {
      slot?.release();
    }
  };
  app.use(getfile);

  const events = async (req: Request, res: Response) => {
    const nodeid = macParam(req.params.mac, 'node');
    const body: Record<string, unknown> = typeof req.body === 'object' && req.body !== null ? (req.body as Record<string, unknown>) : {};
    const text = typeof req.body === 'string' ? req.body.trim() : '';
    const pick = (k: string): string | undefined => {
      const v = req.query[k] ?? body[k];
      return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
    };
    const stage = (pick('stage') ?? '').trim();
    const msg = (pick('msg') ?? text) || null;
    if (!stage) throw new HttpError(400, 'bad event: stage is missing (?stage=...&msg=...)');
    if (stage.length > 128 || (msg?.length ?? 0) > 2048) throw new HttpError(413, 'bad event: stage or msg too long');
    await handlers.nodeEvent({ nodeid, stage, msg, addr: clientAddress(req), credential: presentedCredential(req) });
    res.status(200).type('text/plain').send('ok\n');
  };
  const bodies = [express.json({ limit: '8kb' }), express.urlencoded({ extended: false, limit: '8kb' }), express.text({ limit: '8kb', type: 'text/*' })];
  app.post('/nodes/:mac/events', ...bodies, events);
  app.get('/nodes/:mac/events', events);

  app.get('/nodes/:mac/actions', async (req, res) => {
    if (!handlers.nodeActions) throw new HttpError(404, 'not found: this server takes no node actions');
    const nodeid = macParam(req.params.mac, 'node');
    const wait = req.query.wait === undefined ? 0 : Number(req.query.wait);
    if (!Number.isFinite(wait) || wait < 0 || wait > MAX_ACTION_WAIT) throw new HttpError(400, `bad wait ${JSON.stringify(req.query.wait)}: seconds, 0 to ${MAX_ACTION_WAIT}`);
    const abort = new AbortController();
    // A long-poll sends nothing while it waits: the idle timeout must not cut it (TCP keepalive sees a vanished node).
    const idle = req.socket.timeout ?? 0;
    req.socket.setTimeout(0);
    req.socket.setKeepAlive(true, 30_000);
    res.once('close', () => {
      abort.abort();
      if (!req.socket.destroyed && idle > 0) req.socket.setTimeout(idle);
    });
    const script = await handlers.nodeActions({ nodeid, addr: clientAddress(req), credential: presentedCredential(req), waitMs: wait * 1000, signal: abort.signal });
    if (res.destroyed) return;
    res.setHeader('Cache-Control', 'no-store');
    if (script === null) res.status(204).end();
    else res.status(200).type('text/x-shellscript; charset=utf-8').send(script);
  });

  const upload = async (req: Request, res: Response) => {
    if (!handlers.upload) throw new HttpError(404, 'not found: this server takes no uploads');
    const nodeid = macParam(req.params.mac, 'node');
    const token = String(req.params.token ?? '');
    if (!/^[0-9a-f]{16,128}$/.test(token)) throw new HttpError(404, 'not found: not an upload URL');
    const failed = typeof req.query.failed === 'string' ? req.query.failed.slice(0, 200) : null;
    const header = req.headers['content-length'];
    const length = header === undefined ? null : Number(header);
    const text = await handlers.upload({ nodeid, token, addr: clientAddress(req), credential: presentedCredential(req), body: req, length, failed });
    res.status(200).type('text/plain').setHeader('Connection', 'close');
    res.send(`${text}\n`);
  };
  app.put('/nodes/:mac/upload/:token', upload);
  app.post('/nodes/:mac/upload/:token', upload);

  app.get('/cluster/vnfs/:name/:file', async (req, res) => {
    if (!handlers.peerFile) throw new HttpError(404, 'not found: this server serves no images to other servers');
    const addr = clientAddress(req);
    const auth = req.headers.authorization;
    const { file, sha256 } = await handlers.peerFile({ vnfs: String(req.params.name), file: String(req.params.file), path: rawPath(req), authorization: typeof auth === 'string' ? auth : null, addr });
    res.setHeader('X-Provisiond-Sha256', sha256);
    res.setHeader('Cache-Control', 'no-store');
    const report = await sendFile(req, res, file, { chunkSize: state.options.chunkSize, sendfile: state.sendfile });
    res.locals.sentBytes = report.bytes;
  });

  app.use((req, _res, next) => next(new HttpError(404, `not found: ${req.method} ${rawPath(req)}`)));

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = err instanceof HttpError ? err.status : (err as { status?: number }).status && (err as { status: number }).status < 500 ? (err as { status: number }).status : 500;
    const reason = err instanceof HttpError || status < 500 ? (err as Error).message : 'internal error (see the daemon log)';
    const level = status >= 500 ? 'error' : 'debug';
    log[level]({ addr: clientAddress(req), url: req.originalUrl, status, err: err instanceof Error ? err.message : String(err) }, 'request refused');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HttpError) for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
    res.status(status).type('text/plain').send(`${reason}\n`);
  });
  return app;
}
