/**
 * The admin API as an express application: every operation of routes/ mounted under /api/v1 with
 * the same steps: the token (401), the role (403), the path parameters, query and JSON body checked
 * against the operation's schemas (400 naming the field), the handler, the audit entry for a change,
 * and one error shape for whatever went wrong. Nothing a client sends reaches a handler unchecked.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { z } from 'zod';
import { authenticateRequest } from './auth.js';
import type { ApiContext } from './context.js';
import { ApiError, errorBody, toApiError, validationError } from './errors.js';
import type { Pacer } from '../util/pacer.js';
import { allows, HANDLED, Reply, type Caller, type Operation } from './operation.js';

export interface ApiAppOptions {
  /** Largest JSON body, bytes (config api.maxBody). */
  maxBody: number;
}

export const API_BASE = '/api/v1';

function check<S extends z.ZodType | undefined>(schema: S, value: unknown, where: 'body' | 'query' | 'params'): unknown {
  if (!schema) return undefined;
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw validationError(where, parsed.error.issues);
  return parsed.data;
}

/** Secrets are not written to the audit log. */
function auditDetail(body: unknown): string | null {
  if (body === undefined || body === null) return null;
  const text = JSON.stringify(body, (k, v: unknown) => (/password|secret|token|key$/i.test(k) && typeof v === 'string' ? '***' : v));
  return text.length > 500 ? `${text.slice(0, 497)}...` : text;
}

/**
 * A page's JSON (`{items: [...], ...}`), its items serialized one at a time under the pacer: 5,000
 * nodes stringified at once would hold the event loop DHCP shares. Other bodies: null (res.json).
 */
async function pagedJson(pacer: Pacer, body: unknown): Promise<string | null> {
  if (body === null || typeof body !== 'object' || !Array.isArray((body as { items?: unknown }).items)) return null;
  const { items, ...rest } = body as { items: unknown[] };
  if (items.length < 64) return null;
  const parts: string[] = [];
  for (const item of items) {
    await pacer.pace();
    parts.push(JSON.stringify(item) ?? 'null');
  }
  const tail = JSON.stringify(rest);
  return `{"items":[${parts.join(',')}]${tail === '{}' ? '}' : `,${tail.slice(1)}`}`;
}

async function sendPaced(pacer: Pacer, res: Response, status: number, body: unknown): Promise<void> {
  const text = await pagedJson(pacer, body);
  if (text === null) return send(res, status, body);
  res.status(status).type('application/json').send(text);
}

function send(res: Response, status: number, body: unknown, headers: Record<string, string> = {}): void {
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (status === 204 || body === undefined) res.status(status).end();
  else res.status(status).json(body);
}

/** The caller found by the first step, for the steps after it (the body is read only for a caller allowed to send it). */
const CALLER = Symbol('caller');
type WithCaller = Request & { [CALLER]?: Caller | null };

function mount(router: express.Router, api: ApiContext, op: Operation, json: express.RequestHandler): void {
  // First the token and the role: a stranger's body is never read, and a refusal costs no parsing.
  const authorize = (req: Request, res: Response, next: NextFunction) => {
    void (async () => {
      let caller: Caller | null = null;
      try {
        if (op.access !== 'public') {
          caller = await authenticateRequest(api.registry, api.sessions, req);
          if (!allows(caller.role, op.access)) {
            throw new ApiError(403, 'forbidden', `token ${caller.name} (role ${caller.role}) may not ${op.id}: it needs the ${op.access} role`);
          }
        }
      } catch (err) {
        const e = toApiError(err);
        // A refused change is recorded with its caller and what it aimed at (the path's node, group...).
        if (caller !== null && op.method !== 'get') await recordAudit(api, op, req, caller, e.status, req.params, undefined);
        // The body was not read: the connection cannot be reused for another request.
        if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) res.setHeader('Connection', 'close');
        send(res, e.status, errorBody(e), e.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="provisiond"' } : {});
        return;
      }
      (req as WithCaller)[CALLER] = caller;
      next();
    })();
  };
  const run = async (req: Request, res: Response) => {
    const caller: Caller | null = (req as WithCaller)[CALLER] ?? null;
    let status = 500;
    let params: unknown;
    let body: unknown;
    try {
      params = check(op.params, req.params, 'params');
      const query = check(op.query, req.query, 'query');
      body = check(op.body, req.body ?? {}, 'body');
      const abort = new AbortController();
      res.on('close', () => abort.abort());
      const result = await op.handler({ params, query, body, caller, api, req, res, signal: abort.signal });
      if (result === HANDLED) {
        status = res.statusCode;
      } else if (result instanceof Reply) {
        status = result.status;
        await audit();
        send(res, result.status, result.body, result.headers);
      } else {
        status = op.response.status;
        await audit();
        await sendPaced(api.pacer, res, status, result);
      }
    } catch (err) {
      const e = toApiError(err);
      if (e.status >= 500) api.log.error({ op: op.id, path: req.originalUrl, err: e.message }, `api: ${op.id} failed: ${e.message}`);
      status = e.status;
      await audit();
      if (!res.headersSent) send(res, e.status, errorBody(e), e.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="provisiond"' } : {});
      else res.end();
    }

    async function audit(): Promise<void> {
      // Reads are not changes; a request refused before its caller was known has no one to record.
      if (op.method === 'get' || caller === null) return;
      await recordAudit(api, op, req, caller, status, params ?? req.params, body);
    }
  };
  const handlers: express.RequestHandler[] = op.body ? [authorize, json] : [authorize];
  router[op.method](op.path, ...handlers, (req, res) => void run(req, res));
}

/** Writes the audit entry of a change (made or refused); a failure to write it is logged. */
async function recordAudit(api: ApiContext, op: Operation, req: Request, caller: Caller, status: number, params: unknown, body: unknown): Promise<void> {
  let target: string | null = null;
  try {
    target = op.target?.({ params, body } as never) ?? null;
  } catch {
    target = null;
  }
  await api.registry
    .addAudit({ time: Date.now(), who: caller.name, role: caller.role, action: op.id, method: op.method.toUpperCase(), path: req.originalUrl, target, status, detail: auditDetail(body) })
    .catch((err: unknown) => api.log.error({ op: op.id, err: String(err) }, 'api: the audit entry could not be written'));
}

/** The express application serving `operations` under /api/v1 (and whatever `extra` mounts after them, e.g. /api/docs). */
export function createApiApp(
  api: ApiContext,
  operations: readonly Operation[],
  { maxBody }: ApiAppOptions,
  extra?: (app: express.Express) => void,
  /** Mounted before the operations (path aliases). */
  before?: (app: express.Express) => void,
): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  before?.(app);
  const router = express.Router({ strict: false, caseSensitive: true });
  const json = express.json({ limit: maxBody, strict: true, type: () => true });
  const methods = new Map<string, Set<string>>();
  for (const op of operations) {
    mount(router, api, op, json);
    const set = methods.get(op.path) ?? new Set<string>();
    set.add(op.method.toUpperCase());
    methods.set(op.path, set);
  }
  // A known path with a method it does not have: 405 with the ones it has.
  for (const [path, allowed] of methods) {
    router.all(path, (_req, res) => send(res, 405, errorBody(new ApiError(405, 'method_not_allowed', `allowed: ${[...allowed].join(', ')}`)), { Allow: [...allowed].join(', ') }));
  }
  app.use(API_BASE, router);
  extra?.(app);
  app.use((req, res) => send(res, 404, errorBody(new ApiError(404, 'not_found', `no such resource: ${req.method} ${req.path}`))));
  // Body parser failures (and anything else express raises) in the one shape.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = err as { type?: string; status?: number; message?: string };
    let apiErr: ApiError;
    if (e.type === 'entity.parse.failed') apiErr = new ApiError(400, 'malformed_json', `body: malformed JSON: ${e.message ?? ''}`, 'body');
    else if (e.type === 'entity.too.large') apiErr = new ApiError(413, 'body_too_large', `body: larger than api.maxBody (${maxBody} bytes)`, 'body');
    else if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported') apiErr = new ApiError(415, 'unsupported_media_type', `body: ${e.message ?? 'unsupported encoding'}`, 'body');
    else if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) apiErr = new ApiError(e.status, 'bad_request', e.message ?? 'bad request');
    else apiErr = toApiError(err);
    if (!res.headersSent) send(res, apiErr.status, errorBody(apiErr));
    else res.end();
  });
  return app;
}
