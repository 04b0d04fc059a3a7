/**
 * The authorization matrix, generated from the daemon's own /api/v1/openapi.json: every operation
 * it documents is called with no token, a revoked token, an expired one and a token of each role.
 * What each role may do comes from ACCESS below (the rules), never from the document's
 * `x-access`: an operation the table does not know fails the test until someone decides its row.
 * Allowed means the request got past the token and role checks (anything but 401/403: a 404 for a
 * made-up node or a 400 for an empty body is fine). Every JSON answer is validated against the document.
 */
import t from 'tap';
import type { Role } from '../../src/registry/types.js';
import { startApiDaemon } from './lib/harness.js';
import type { ApiDocument, DocOperation } from './lib/validate.js';

type Need = 'public' | Role;

/**
 * Who may call what, as issue 18 says: viewer reads; operator also power, bootdev, reload (and task
 * cancel); admin everything, tokens and the audit log included. Exact operationIds first, then tag + method.
 */
const BY_ID: Record<string, Need> = {
  'health.get': 'public',
  'openapi.get': 'public',
  'whoami.get': 'viewer',
  'audit.list': 'admin',
  'tokens.list': 'admin',
  'tokens.create': 'admin',
  'tokens.revoke': 'admin',
  'tasks.list': 'viewer',
  'tasks.get': 'viewer',
  'tasks.cancel': 'operator',
  'events.stream': 'viewer',
  'metrics.get': 'viewer',
  'events.recent': 'viewer',
  'session.create': 'public',
  'session.get': 'viewer',
  'session.delete': 'viewer',
  'nodes.console': 'viewer',
};

const BY_TAG: Record<string, Partial<Record<string, Need>>> = {
  nodes: { get: 'viewer', post: 'admin', put: 'admin', patch: 'admin', delete: 'admin' },
  groups: { get: 'viewer', post: 'admin', put: 'admin', patch: 'admin', delete: 'admin' },
  vnfs: { get: 'viewer', post: 'admin', put: 'admin', patch: 'admin', delete: 'admin' },
  scripts: { get: 'viewer' },
  lint: { get: 'viewer' },
  modules: { get: 'viewer' },
  timeline: { get: 'viewer' },
  verdict: { get: 'viewer' },
  power: { get: 'viewer', post: 'operator' },
  bootdev: { get: 'viewer', post: 'operator' },
  reload: { get: 'viewer', post: 'operator' },
  tasks: { get: 'viewer', post: 'operator' },
  allocations: { get: 'viewer', post: 'operator', delete: 'operator' },
};

function need(op: DocOperation): Need | undefined {
  return BY_ID[op.operationId] ?? BY_TAG[op.tags[0] ?? '']?.[op.method];
}

const RANK: Record<Need, number> = { public: 0, viewer: 1, operator: 2, admin: 3 };

/** Made-up values for path parameters: a node, group, VNFS, task or token nobody has. */
function fill(path: string): string {
  return path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    if (name === 'state') return 'init';
    return `zz-made-up-${name}`;
  });
}

/**
 * One call: the status, and the problems of its answer against the document. A stream (events) is
 * cut once its headers are in: its status is all the matrix needs.
 */
async function call(doc: ApiDocument, base: string, op: DocOperation, token: string | null): Promise<{ status: number; problems: string[]; code?: string; auth?: string | null }> {
  const abort = new AbortController();
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const init: RequestInit = { method: op.method.toUpperCase(), headers, signal: abort.signal };
  if (op.requestBody) {
    headers['content-type'] = 'application/json';
    init.body = '{}';
  }
  const res = await fetch(`${base}/api/v1${fill(op.path)}`, init);
  const type = res.headers.get('content-type');
  if (!type?.startsWith('application/json')) {
    abort.abort();
    return { status: res.status, problems: doc.validateResponse(op, res.status, type, undefined).filter((p) => !/without a body/.test(p)) };
  }
  const body = (await res.json()) as { error?: { code?: string } };
  return { status: res.status, problems: doc.validateResponse(op, res.status, type, body), code: body.error?.code, auth: res.headers.get('www-authenticate') };
}

t.test('every documented operation, with no token, a revoked, an expired one and each role', async (t) => {
  const h = await startApiDaemon(t);
  const revoked = await h.token('t-revoked', 'admin');
  await h.daemon.registry.revokeToken('t-revoked');
  // Made an hour ago with a lifetime of a minute.
  const expired = await h.token('t-expired', 'admin', 60_000, Date.now() - 3_600_000);
  const secret = (c: { token: string | null }) => c.token;
  const callers: Array<{ who: string; token: string | null; role: Role | null }> = [
    { who: 'no token', token: null, role: null },
    { who: 'a revoked admin token', token: revoked, role: null },
    { who: 'an expired admin token', token: expired, role: null },
    { who: 'a garbage token', token: 'pvd_not-a-token', role: null },
    { who: 'viewer', token: secret(h.viewer), role: 'viewer' },
    { who: 'operator', token: secret(h.operator), role: 'operator' },
    { who: 'admin', token: secret(h.admin), role: 'admin' },
  ];

  const ops = h.doc.operations;
  t.ok(ops.length >= 11, `${ops.length} operations in the document`);
  const unknown = ops.filter((op) => need(op) === undefined).map((op) => `${op.operationId} (tag ${op.tags[0]}, ${op.method})`);
  t.same(unknown, [], 'every operation has a row in the table: add it to the table (BY_ID or BY_TAG)');

  let calls = 0;
  for (const op of ops) {
    const required = need(op);
    if (required === undefined) continue;
    const label = `${op.method.toUpperCase()} ${op.path} (${op.operationId}, needs ${required})`;
    for (const c of callers) {
      const r = await call(h.doc, h.apiBase, op, c.token);
      calls++;
      t.same(r.problems, [], `${label} as ${c.who}: answer matches the document`);
      if (required === 'public') {
        // A public operation with a body (the login) answers the empty body of the matrix with a 400.
        if (op.requestBody) t.ok(r.status === 400 && r.code === 'invalid', `${label} as ${c.who}: ${r.status}, public (the empty body refused)`);
        else t.ok(r.status >= 200 && r.status < 300, `${label} as ${c.who}: ${r.status}, public`);
      } else if (c.role === null) {
        t.equal(r.status, 401, `${label} as ${c.who}: 401`);
        t.equal(r.code, 'unauthorized', `${label} as ${c.who}: code unauthorized`);
        t.match(r.auth, /^Bearer /, `${label} as ${c.who}: WWW-Authenticate`);
      } else if (RANK[c.role] >= RANK[required]) {
        t.notOk(r.status === 401 || r.status === 403, `${label} as ${c.who}: allowed (${r.status})`);
      } else {
        t.equal(r.status, 403, `${label} as ${c.who}: 403`);
        t.equal(r.code, 'forbidden', `${label} as ${c.who}: code forbidden`);
      }
    }
  }
  t.equal(calls, ops.filter((op) => need(op) !== undefined).length * callers.length, `${calls} calls`);
  t.equal((await h.daemon.registry.listTokens()).find((x) => x.name === 't-expired')?.lastUsed, null, 'an expired token is never marked used');
});

t.test("the document's x-access agrees with the table", async (t) => {
  // The document's x-access is not read above; check that it at least agrees with the table, so a
  // drift between the two is reported here with its operation named.
  const h = await startApiDaemon(t);
  const drift = h.doc.operations.filter((op) => need(op) !== undefined && op['x-access'] !== need(op)).map((op) => `${op.operationId}: table ${need(op)}, document ${op['x-access']}`);
  t.same(drift, [], 'the table and the document agree');
});
