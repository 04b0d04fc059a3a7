/**
 * The check of a request's `Authorization: Bearer` header against the registry. 401 for no token, an unknown,
 * revoked or expired one; the role decides the rest (403, in app.ts).
 */
import { hashToken } from '../registry/tokens.js';
import type { RegistryStore } from '../registry/types.js';
import { ApiError } from './errors.js';
import type { Caller } from './operation.js';

/** The caller of a request, from its Authorization header; an ApiError 401 when there is none that is valid. */
export async function authenticate(registry: RegistryStore, header: string | undefined, now = Date.now()): Promise<Caller> {
  if (!header) throw new ApiError(401, 'unauthorized', 'no token: send Authorization: Bearer TOKEN (provisiond token create NAME --role ROLE)');
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new ApiError(401, 'unauthorized', 'the Authorization header must be "Bearer TOKEN"');
  const token = await registry.getTokenByHash(hashToken(m[1]!));
  if (!token) throw new ApiError(401, 'unauthorized', 'unknown token');
  if (token.revoked !== null) throw new ApiError(401, 'unauthorized', `token ${token.name} was revoked`);
  if (token.expires !== null && token.expires <= now) throw new ApiError(401, 'unauthorized', `token ${token.name} expired`);
  if (token.lastUsed === null || token.lastUsed < now - 60_000) void registry.touchToken(token.name, now).catch(() => {});
  return { name: token.name, role: token.role };
}
