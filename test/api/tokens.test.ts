/**
 * Tokens made, listed and revoked with the real CLI (bin/provisiond.js) while a daemon serves the
 * API, and the audit log: every change made through the API is at GET /audit with who, what and
 * how it ended, and what the API acknowledged is still there after `kill -9` of a real
 * `provisiond serve` (a token made with POST /tokens included).
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AuditEntry } from '../../src/registry/types.js';
import { ServeProcess, testConfig } from '../lib/daemon.js';
import { CLI, REPO } from '../lib/paths.js';
import { sleep } from '../lib/sleep.js';
import { makeStatedir } from '../lib/statedir.js';
import { startApiDaemon } from './lib/harness.js';
import { ApiClient, ApiDocument } from './lib/validate.js';

const exec = promisify(execFile);

/** `provisiond --config FILE ARGS...` as an admin runs it. */
async function cli(configPath: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return exec(process.execPath, [CLI, '--config', configPath, ...args], { cwd: REPO }).then(
    (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
  );
}

type AuditItem = AuditEntry;

t.test('token create, list and revoke through the CLI against a running daemon', async (t) => {
  const h = await startApiDaemon(t);
  const cfg = h.configPath;

  const made = await cli(cfg, 'token', 'create', 'vcl', '--role', 'operator', '--expires', '90d');
  t.equal(made.code, 0, made.err);
  const secret = made.out.trim();
  t.match(secret, /^pvd_[A-Za-z0-9_-]{40,}$/, 'stdout is the secret alone');
  t.equal(made.out.split('\n').filter(Boolean).length, 1, 'on one line');
  t.match(made.err, /token vcl \(operator, expires \d{4}-\d\d-\d\d \d\d:\d\d\) created; this is the only time its secret is shown/);

  const before = await cli(cfg, 'token', 'list');
  t.match(before.out, /^NAME\s+ROLE\s+CREATED\s+LAST USED\s+EXPIRES\s+STATE$/m, 'the columns');
  t.match(before.out, /^vcl\s+operator\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+never\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+active$/m, 'never used yet');
  t.notMatch(before.out, secret, 'the list never shows a secret');

  const vcl = h.anon.as(secret);
  t.same((await vcl.get('/whoami')).body, { name: 'vcl', role: 'operator' }, 'the secret works on the API');
  // The last use is recorded in the background (to the minute): wait for it.
  let used = '';
  for (let i = 0; i < 50 && !/^vcl\s+operator\s+\S+ \S+\s+\d{4}/m.test(used); i++) {
    await sleep(100);
    used = (await cli(cfg, 'token', 'list')).out;
  }
  t.match(used, /^vcl\s+operator\s+\S+ \S+\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+active$/m, 'last used is set once it was used');
  const json = JSON.parse((await cli(cfg, 'token', 'list', '--json')).out) as Array<Record<string, unknown>>;
  t.match(json.find((x) => x.name === 'vcl'), { name: 'vcl', role: 'operator', lastUsed: Number, expires: Number, revoked: null });
  t.notOk(json.some((x) => 'hash' in x), 'no hash in --json either');

  // Only the sha256 is stored: the secret is nowhere in the statedir (the database and its WAL).
  for (const f of readdirSync(h.statedir).filter((f) => /\.db/.test(f))) t.notOk(readFileSync(join(h.statedir, f)).includes(secret), `${f} does not hold the secret`);

  const revoked = await cli(cfg, 'token', 'revoke', 'vcl');
  t.equal(revoked.code, 0);
  t.match(revoked.out, /revoked token vcl/);
  const refused = await vcl.get('/whoami');
  t.equal(refused.status, 401, 'a revoked token gets 401 at once');
  t.match(refused.body, { error: { code: 'unauthorized', message: /token vcl was revoked/ } });
  t.match((await cli(cfg, 'token', 'list')).out, /^vcl\s+operator\s.*revoked \d{4}-\d\d-\d\d \d\d:\d\d$/m, 'listed as revoked');

  const short = await cli(cfg, 'token', 'create', 'brief', '--role', 'viewer', '--expires', '1s');
  const brief = h.anon.as(short.out.trim());
  t.equal((await brief.get('/whoami')).status, 200, 'a 1 s token works at first');
  await sleep(1200);
  const late = await brief.get('/whoami');
  t.equal(late.status, 401, 'and gets 401 once its second is over');
  t.match(late.body, { error: { message: /token brief expired/ } });
  t.match((await cli(cfg, 'token', 'list')).out, /^brief\s+viewer\s.*expired$/m);

  const bad = await cli(cfg, 'token', 'create', 'x', '--role', 'root');
  t.not(bad.code, 0);
  t.match(bad.err, /--role "root": expected viewer, operator, admin/);
  t.notMatch(bad.err, /\n\s+at /, 'no stack trace');
  const dup = await cli(cfg, 'token', 'create', 'brief', '--role', 'viewer');
  t.not(dup.code, 0, 'the name of a token not revoked is refused');
  t.match(dup.err, /a token named "brief" exists: revoke it first/);
  t.notMatch(dup.err, /\n\s+at /);
  const again = await cli(cfg, 'token', 'create', 'vcl', '--role', 'viewer');
  t.equal(again.code, 0, 'a revoked name can be given again');
  t.equal((await vcl.get('/whoami')).status, 401, 'and the old secret stays refused');
  t.same((await h.anon.as(again.out.trim()).get('/whoami')).body, { name: 'vcl', role: 'viewer' });
});

t.test('every change through the API is in the audit log: who, what, target, status', async (t) => {
  const h = await startApiDaemon(t);
  const made = await h.admin.post('/tokens', { name: 'opennebula', role: 'viewer', expires: '30d' });
  t.equal(made.status, 201);
  const dup = await h.admin.post('/tokens', { name: 'opennebula', role: 'viewer' });
  t.equal(dup.status, 409, 'a name taken: 409');
  const bad = await h.admin.post('/tokens', { name: 'x', role: 'root' });
  t.equal(bad.status, 400);
  t.equal((await h.operator.post('/tokens', { name: 'y', role: 'admin' })).status, 403);
  t.equal((await h.operator.request('DELETE', '/tokens/opennebula')).status, 403);
  t.equal((await h.admin.request('DELETE', '/tokens/opennebula')).status, 200);
  t.equal((await h.anon.request('DELETE', '/tokens/t-admin')).status, 401);
  await h.viewer.get('/whoami');

  const page = await h.admin.get('/audit');
  const items = (page.body as { items: AuditItem[] }).items;
  const rows = items.map((e) => `${e.who} ${e.role} ${e.action} ${e.method} ${e.target} ${e.status}`);
  t.same(rows, [
    't-admin admin tokens.revoke DELETE opennebula 200',
    // Refused: the target named in the path is known...
    't-operator operator tokens.revoke DELETE opennebula 403',
    // ...one named in the body is not: the body of a refused request is not read.
    't-operator operator tokens.create POST null 403',
    't-admin admin tokens.create POST null 400',
    't-admin admin tokens.create POST opennebula 409',
    't-admin admin tokens.create POST opennebula 201',
  ], 'newest first; reads and unauthenticated attempts are not changes');
  t.match(items.at(-1), { path: '/api/v1/tokens', detail: /"name":"opennebula"/ });
  t.ok(items.every((e) => Math.abs(e.time - Date.now()) < 60_000), 'when');
  t.notMatch(JSON.stringify(items), (made.body as { secret: string }).secret, 'the secret of a token made is not in the log');

  const mine = await h.admin.get('/audit?who=t-operator');
  t.equal((mine.body as { items: AuditItem[] }).items.length, 2, '?who= filters');
  const first = await h.admin.get('/audit?limit=2');
  const p1 = first.body as { items: AuditItem[]; next: string };
  t.equal(p1.items.length, 2);
  const second = await h.admin.get(`/audit?limit=2&cursor=${p1.next}`);
  t.equal((second.body as { items: AuditItem[] }).items[0]!.action, 'tokens.create', 'the cursor walks on');
});

/** The API base URL of a ServeProcess, from its `listening: api URL` line. */
async function apiBaseOf(d: ServeProcess): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const m = d.lines.map((l) => /^listening: api (\S+)$/.exec(String(l.msg))).find(Boolean);
    if (m) return m[1]!;
    await sleep(50);
  }
  throw new Error('provisiond serve: no api listening line');
}

t.test('what the API acknowledged survives kill -9 of provisiond serve: the audit log and a token', async (t) => {
  const statedir = makeStatedir(t, {}, { prefix: 'pvd-apik9-', layout: true });
  const configPath = join(statedir, 'provisiond.yaml');
  writeFileSync(configPath, testConfig(statedir));
  const root = (await cli(configPath, 'token', 'create', 'root', '--role', 'admin')).out.trim();

  const first = await ServeProcess.start({ configPath });
  t.teardown(() => first.stop());
  const base = await apiBaseOf(first);
  const admin = new ApiClient(base, await ApiDocument.load(base), root);
  const made = await admin.post('/tokens', { name: 'drydock', role: 'operator' });
  t.equal(made.status, 201);
  const secret = (made.body as { secret: string }).secret;
  const acked: number[] = [];
  for (let i = 0; i < 20; i++) acked.push((await admin.post('/tokens', { name: `burst-${i}`, role: 'viewer' })).status);
  t.same(acked, Array(20).fill(201));
  t.equal((await admin.request('DELETE', '/tokens/burst-3')).status, 200);
  // Straight after the last acknowledgement: no clean shutdown, no flush.
  first.kill('SIGKILL');
  t.equal(await first.exited, null, 'killed by the signal');

  const second = await ServeProcess.start({ configPath });
  t.teardown(() => second.stop());
  const base2 = await apiBaseOf(second);
  const doc = await ApiDocument.load(base2);
  t.same((await new ApiClient(base2, doc, secret).get('/whoami')).body, { name: 'drydock', role: 'operator' }, 'the token made by POST /tokens works after the crash');
  const items = ((await new ApiClient(base2, doc, root).get('/audit?limit=1000')).body as { items: AuditItem[] }).items;
  t.equal(items.length, 22, 'every acknowledged change is in the audit log');
  t.match(items[0], { who: 'root', action: 'tokens.revoke', target: 'burst-3', status: 200 });
  const names = ((await new ApiClient(base2, doc, root).get('/tokens')).body as { items: Array<{ name: string; revoked: number | null }> }).items;
  t.equal(names.length, 22, 'root, drydock and the 20 of the burst');
  t.ok(names.find((x) => x.name === 'burst-3')?.revoked, 'the revocation too');
  await second.stop();
});
