/**
 * What the resource tests share: a real daemon (test/lib/daemon.ts) with its API on a loopback port,
 * a token of each role, a JSON client over node's fetch, and the CLI run against the same config
 * (to compare the API's answers with what an admin's command prints).
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import type { Test } from 'tap';
import { apiOperations } from '../../src/api/index.js';
import { createToken } from '../../src/registry/tokens.js';
import type { Role } from '../../src/registry/types.js';
import { startDaemon, type Harness } from '../lib/daemon.js';

const BIN = resolve(import.meta.dirname, '../../bin/provisiond.js');

export interface Answer {
  status: number;
  headers: Headers;
  /** The parsed JSON body, or the text when it is not JSON (null when empty). */
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
}

export type Call = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<Answer>;

export interface ApiHarness extends Harness {
  /** http://127.0.0.1:PORT/api/v1 */
  api: string;
  /** Calls as the admin token. */
  call: Call;
  /** Calls with a token of `role`. */
  as(role: Role): Call;
  cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

const OPS = apiOperations().map((op) => ({ op, re: new RegExp(`^${op.path.replace(/:[A-Za-z_]+/g, '[^/]+')}$`) }));

/**
 * Checks a successful JSON answer against the response schema of the operation that served it (the
 * schema the OpenAPI document is made of), so that what the document promises is what is sent.
 */
function checkAnswer(t: Test, method: string, path: string, status: number, body: unknown): void {
  if (status >= 300 || body === null || typeof body !== 'object') return;
  const bare = path.split('?')[0]!;
  const found = OPS.find(({ op, re }) => op.method === method.toLowerCase() && re.test(bare));
  if (!found?.op.response.schema) return;
  const parsed = found.op.response.schema.safeParse(body);
  if (!parsed.success) t.fail(`${method} ${path}: the answer does not match the ${found.op.id} schema: ${JSON.stringify(parsed.error.issues.slice(0, 3))}`);
}

function caller(api: string, secret: string, t: Test): Call {
  return async (method, path, body, headers = {}) => {
    const res = await fetch(`${api}${path}`, {
      method,
      headers: { authorization: `Bearer ${secret}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text === '' ? null : text;
    if ((res.headers.get('content-type') ?? '').includes('json')) parsed = JSON.parse(text);
    checkAnswer(t, method, path, res.status, parsed);
    return { status: res.status, headers: res.headers, body: parsed, text };
  };
}

/** The daemon of `startDaemon` (extra config, files) with tokens and a client. */
export async function apiDaemon(t: Test, extraConfig = '', setup?: (statedir: string) => void): Promise<ApiHarness> {
  const h = await startDaemon(t, extraConfig, { setup });
  const api = `${(h.daemon.services.get('api') as unknown as { url: string }).url}/api/v1`;
  const secrets = new Map<Role, string>();
  for (const role of ['viewer', 'operator', 'admin'] as const) secrets.set(role, (await createToken(h.daemon.registry, { name: `t-${role}`, role })).secret);
  return {
    ...h,
    api,
    call: caller(api, secrets.get('admin')!, t),
    as: (role) => caller(api, secrets.get(role)!, t),
    cli: (args) =>
      new Promise((res) => {
        execFile(BIN, ['--config', h.configPath, ...args], { cwd: h.statedir, timeout: 60_000 }, (err, stdout, stderr) =>
          res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      }),
  };
}
