/**
 * Browser sessions of the web UI: a token given once at login becomes a random session id in an
 * HttpOnly, SameSite=Strict cookie. The daemon keeps the session (the token's hash, never the token),
 * so the cookie is worthless once the session ends: logout, its lifetime (`ttlMs`, renewed while it
 * is used, never beyond `maxMs`), or the token being revoked or expiring (checked on every request).
 * Each session has its own CSRF secret, which state-changing requests made with the cookie must
 * echo in `X-CSRF-Token`. Sessions live in memory: a daemon restart logs browsers out.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'pvd_session';
export const CSRF_HEADER = 'x-csrf-token';

export interface Session {
  /** sha256 of the token it was opened with: the token is looked up again on every request. */
  tokenHash: string;
  csrf: string;
  created: number;
  /** Ends at this time unless used before (ms). */
  expires: number;
}

export interface SessionStoreOptions {
  /** Idle lifetime (default 8 h). */
  ttlMs?: number;
  /** Longest life whatever the use (default 24 h). */
  maxMs?: number;
  /** Most sessions kept; the oldest goes first (default 10,000). */
  capacity?: number;
}

const idHash = (id: string) => createHash('sha256').update(id).digest('hex');

export class SessionStore {
  readonly ttlMs: number;
  readonly maxMs: number;
  readonly #capacity: number;
  /** By the sha256 of the session id: a dump of the memory holds no usable cookie. */
  readonly #sessions = new Map<string, Session>();

  constructor({ ttlMs = 8 * 3_600_000, maxMs = 24 * 3_600_000, capacity = 10_000 }: SessionStoreOptions = {}) {
    this.ttlMs = ttlMs;
    this.maxMs = maxMs;
    this.#capacity = capacity;
  }

  /** Opens a session; returns its id (the cookie's value) and the session. */
  create(tokenHash: string, now = Date.now()): { id: string; session: Session } {
    this.#sweep(now);
    while (this.#sessions.size >= this.#capacity) this.#sessions.delete(this.#sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const session: Session = { tokenHash, csrf: randomBytes(24).toString('base64url'), created: now, expires: Math.min(now + this.ttlMs, now + this.maxMs) };
    this.#sessions.set(idHash(id), session);
    return { id, session };
  }

  /** The live session of a cookie value (its lifetime renewed), or null. */
  get(id: string, now = Date.now()): Session | null {
    const key = idHash(id);
    const s = this.#sessions.get(key);
    if (!s) return null;
    if (s.expires <= now) {
      this.#sessions.delete(key);
      return null;
    }
    s.expires = Math.min(now + this.ttlMs, s.created + this.maxMs);
    return s;
  }

  delete(id: string): boolean {
    return this.#sessions.delete(idHash(id));
  }

  get size(): number {
    return this.#sessions.size;
  }

  #sweep(now: number): void {
    for (const [k, s] of this.#sessions) if (s.expires <= now) this.#sessions.delete(k);
  }
}

/** Whether the CSRF header a request sent is the session's (constant time). */
export function csrfMatches(session: Session, sent: string | undefined): boolean {
  if (!sent) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(sent);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The value of one cookie of a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
