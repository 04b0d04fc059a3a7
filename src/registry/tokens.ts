/**
 * Admin API tokens: a random secret shown once, of which only the sha256 is stored. Shared by the
 * CLI (`provisiond token create` on the master) and the API (`POST /tokens`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { UsageError } from '../util/errors.js';
import type { ApiToken, RegistryStore, Role } from './types.js';

const PREFIX = 'pvd_';

/** sha256 hex of a token secret: what the registry keeps. */
export function hashToken(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Creates a token: stores its hash, returns the record and the secret (to be shown once, never again). */
export async function createToken(
  registry: RegistryStore,
  o: { name: string; role: Role; expiresInMs?: number | null; now?: number },
): Promise<{ token: ApiToken; secret: string }> {
  const now = o.now ?? Date.now();
  const secret = PREFIX + randomBytes(32).toString('base64url');
  const token = await registry.createToken({ name: o.name, role: o.role, hash: hashToken(secret), created: now, expires: o.expiresInMs ? now + o.expiresInMs : null });
  return { token, secret };
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 365 * 86_400_000 };

/** `90d`, `12h`, `30m`, `2w`, `1y` -> milliseconds. */
export function parseLifetime(text: string): number {
  const m = /^(\d+)\s*([smhdwy])$/.exec(text.trim());
  if (!m || Number(m[1]) <= 0) throw new UsageError(`expires ${JSON.stringify(text)}: expected a positive number with a unit: s, m, h, d, w or y (e.g. 90d)`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

