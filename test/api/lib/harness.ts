/**
 * A real daemon with its admin API on a loopback port the kernel picks, the API's document loaded,
 * one token per role made through the registry, and a validating client for each.
 */
import { createToken } from '../../../src/registry/tokens.js';
import type { Role } from '../../../src/registry/types.js';
import { startDaemon, type Harness } from '../../lib/daemon.js';
import type { Teardown } from '../../lib/statedir.js';
import { ApiClient, ApiDocument } from './validate.js';

export interface ApiHarness extends Harness {
  /** `http://127.0.0.1:PORT` of the API listener. */
  apiBase: string;
  doc: ApiDocument;
  /** No token. */
  anon: ApiClient;
  viewer: ApiClient;
  operator: ApiClient;
  admin: ApiClient;
  /** A token's secret, made with the registry's createToken. */
  token(name: string, role: Role, expiresInMs?: number | null, now?: number): Promise<string>;
}

/** The URL of the daemon's API listener. */
export function apiUrl(h: Harness): string {
  return (h.daemon.services.get('api') as unknown as { url: string }).url;
}

export async function startApiDaemon(t: Teardown, extraConfig = '', opts: Parameters<typeof startDaemon>[2] = {}): Promise<ApiHarness> {
  const h = await startDaemon(t, extraConfig, opts);
  const apiBase = apiUrl(h);
  const doc = await ApiDocument.load(apiBase);
  const token = async (name: string, role: Role, expiresInMs: number | null = null, now?: number) =>
    (await createToken(h.daemon.registry, { name, role, expiresInMs, now })).secret;
  const anon = new ApiClient(apiBase, doc, null);
  return {
    ...h,
    apiBase,
    doc,
    anon,
    viewer: anon.as(await token('t-viewer', 'viewer')),
    operator: anon.as(await token('t-operator', 'operator')),
    admin: anon.as(await token('t-admin', 'admin')),
    token,
  };
}
