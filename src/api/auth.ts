/**
 * Who a request comes from: its `Authorization: Bearer` header, or (the web UI) its session cookie,
 * checked against the registry each time. 401 for no token, an unknown, revoked or expired one, or
 * a session that ended; a state-changing request made with the cookie must also carry the session's
 * CSRF secret (403 otherwise). The role decides the rest (403, in app.ts).
 */
import type { IncomingMessage } from 'node:http';
import { hashToken } from '../registry/tokens.js';
import type { RegistryStore } from '../registry/types.js';
import { ApiError } from './errors.js';
import type { Caller } from './operation.js';
import { cookieValue, CSRF_HEADER, csrfMatches, SESSION_COOKIE, type Session, type SessionStore } from './sessions.js';

/** The caller owning a token's hash; an ApiError 401 when there is none that is valid. */
export async function callerOfHash(registry: RegistryStore, hash: string, now = Date.now()): Promise<Caller> {
  const token = await registry.getTokenByHash(hash);
  if (!token) throw new ApiError(401, 'unauthorized', 'unknown token');
  if (token.revoked !== null) throw new ApiError(401, 'unauthorized', `token ${token.name} was revoked`);
  if (token.expires !== null && token.expires <= now) throw new ApiError(401, 'unauthorized', `token ${token.name} expired`);
  if (token.lastUsed === null || token.lastUsed < now - 60_000) void registry.touchToken(token.name, now).catch(() => {});
  return { name: token.name, role: token.role };
}

/** The caller of a request, from its Authorization header; an ApiError 401 when there is none that is valid. */
export async function authenticate(registry: RegistryStore, header: string | undefined, now = Date.now()): Promise<Caller> {
  if (!header) throw new ApiError(401, 'unauthorized', 'no token: send Authorization: Bearer TOKEN (provisiond token create NAME --role ROLE)');
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new ApiError(401, 'unauthorized', 'the Authorization header must be "Bearer TOKEN"');
  return callerOfHash(registry, hashToken(m[1]!), now);
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The caller of a request: Bearer first; else the session cookie, with the CSRF header on anything
 * but a read. `session` is set when the cookie was used.
 */
export async function authenticateRequest(
  registry: RegistryStore,
  sessions: SessionStore,
  req: IncomingMessage,
  now = Date.now(),
): Promise<Caller & { session?: Session }> {
  if (req.headers.authorization !== undefined) return authenticate(registry, req.headers.authorization, now);
  const id = cookieValue(req.headers.cookie, SESSION_COOKIE);
  if (id === undefined) return authenticate(registry, undefined, now);
  const session = sessions.get(id, now);
  if (!session) throw new ApiError(401, 'unauthorized', 'the session ended (logged out or expired): log in again');
  const caller = await callerOfHash(registry, session.tokenHash, now).catch((err: unknown) => {
    sessions.delete(id);
    throw err;
  });
  if (!SAFE.has(req.method ?? 'GET') && !csrfMatches(session, req.headers[CSRF_HEADER] as string | undefined)) {
    throw new ApiError(403, 'csrf', `a request made with the session cookie must send the session's ${CSRF_HEADER} header (from POST or GET /api/v1/session)`);
  }
  return { ...caller, session };
}
