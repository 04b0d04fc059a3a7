/**
 * The web UI's login and cluster overview in headless Chromium against a real daemon: a token
 * becomes an HttpOnly, SameSite=Strict session cookie that never holds the token; the API takes
 * the cookie, refuses a change made with it but without the session's CSRF secret, and refuses a
 * viewer's power request whatever the page shows; logout ends the session on the daemon. The
 * overview counts the registry and follows a real HTTP check-in live, without a reload.
 */
import t from 'tap';
import { text } from '../lib/daemon.js';
import { startApiDaemon, type ApiHarness } from '../api/lib/harness.js';
import type { Page } from 'playwright-core';
import { browser, loggedIn, shot } from './lib.js';

const NODES = [
  { name: 'n0001', nodeid: '52:54:00:ab:00:01', group: 'compute' },
  { name: 'n0002', nodeid: '52:54:00:ab:00:02', group: 'compute' },
  { name: 'n0003', nodeid: '52:54:00:ab:00:03', group: 'compute' },
  { name: 'login1', nodeid: '52:54:00:ab:00:10', group: 'login' },
];

async function cluster(t: Parameters<typeof startApiDaemon>[0]): Promise<ApiHarness> {
  const h = await startApiDaemon(t);
  h.write('nodescripts/init/all/10-hello', '#!/bin/sh\necho "echo hello from $NODENAME"\n', 0o755);
  for (const n of NODES) await h.daemon.registry.addNode(n);
  return h;
}

/** In the page: an API call made the way the UI makes them (the cookie), with or without the CSRF header. */
async function inPage(page: Page, method: string, path: string, body: unknown, csrf: boolean) {
  return page.evaluate(
    async ({ method, path, body, csrf }) => {
      const s = (await (await fetch('/api/v1/session')).json()) as { csrf: string };
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (csrf) headers['x-csrf-token'] = s.csrf;
      const res = await fetch(`/api/v1${path}`, { method, headers, body: body === null ? undefined : JSON.stringify(body) });
      return { status: res.status, body: (await res.json().catch(() => null)) as { error?: { code: string; message: string } } | null };
    },
    { method, path, body, csrf },
  );
}

t.test('login: a session cookie, never the token; CSRF; roles enforced by the API; logout', async (t) => {
  const b = await browser(t);
  if (!b) return;
  const h = await cluster(t);
  const viewerToken = h.viewer.token!;

  // A wrong token: the form says why, no cookie.
  const ctx = await b.newContext();
  const page = await ctx.newPage();
  await page.goto(`${h.apiBase}/ui/`);
  await page.fill('#login input[name=token]', 'pvd_wrong');
  await page.click('#login button[type=submit]');
  // A function, not a string: Playwright evals a string again at each poll, which the UI's CSP (no
  // 'unsafe-eval') refuses once polling leaves the first call; a function is evaled once.
  await page.waitForFunction(() => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } | null } }).document.getElementById('login-error')?.textContent !== '');
  t.match(await page.textContent('#login-error'), /login refused: unknown token/, 'a wrong token is refused with the reason');
  t.same(await ctx.cookies(), [], 'no cookie for a wrong token');
  await ctx.close();

  const v = await loggedIn(b, h.apiBase, viewerToken);
  const [cookie] = await v.page.context().cookies();
  t.match(cookie, { name: 'pvd_session', httpOnly: true, sameSite: 'Strict', path: '/' }, 'an HttpOnly, SameSite=Strict session cookie');
  t.notOk(cookie!.value.includes(viewerToken) || viewerToken.includes(cookie!.value), 'the cookie does not hold the token');
  t.equal(await v.page.evaluate('document.cookie'), '', 'scripts cannot read it');
  t.match(await v.page.textContent('#who'), 't-viewer (viewer)');

  const reads = await inPage(v.page, 'GET', '/nodes', null, false);
  t.equal(reads.status, 200, 'the API takes the cookie for a read');
  const noCsrf = await inPage(v.page, 'POST', '/nodes/n0001/power', { action: 'on' }, false);
  t.match(noCsrf, { status: 403, body: { error: { code: 'csrf' } } }, 'a change with the cookie but without X-CSRF-Token: 403 csrf');
  const viewerPower = await inPage(v.page, 'POST', '/nodes/n0001/power', { action: 'on' }, true);
  t.match(viewerPower, { status: 403, body: { error: { code: 'forbidden' } } }, "the API refuses a viewer's power request, CSRF or not");

  const o = await loggedIn(b, h.apiBase, h.operator.token!);
  const opPower = await inPage(o.page, 'POST', '/nodes/n0001/power', { action: 'on' }, true);
  t.not(opPower.status, 403, `an operator's request with the CSRF secret passes the checks (${opPower.status})`);
  t.not(opPower.status, 401);

  // The cookie replayed from outside the browser: accepted until logout, refused after.
  const asCookie = (c: string) => text(`${h.apiBase}/api/v1/whoami`, { headers: { cookie: `pvd_session=${c}` } });
  t.equal((await asCookie(cookie!.value)).status, 200);
  await v.page.click('#logout');
  await v.page.waitForSelector('#login');
  t.match(await v.page.textContent('#login-error'), /Logged out/);
  t.equal((await asCookie(cookie!.value)).status, 401, 'after logout the session is gone on the daemon, not only in the browser');
  t.same(await v.page.context().cookies(), [], 'and the browser dropped the cookie');

  // Revoking the token ends the sessions opened with it.
  const [opCookie] = await o.page.context().cookies();
  t.equal((await asCookie(opCookie!.value)).status, 200);
  await h.daemon.registry.revokeToken('t-operator');
  t.equal((await asCookie(opCookie!.value)).status, 401, 'a revoked token ends its sessions');
  await o.page.reload();
  await o.page.waitForSelector('#login');
  t.same([...v.errors, ...o.errors], [], 'no script error, nothing failed to load');
});

t.test('the overview counts the registry and follows a check-in live', async (t) => {
  const b = await browser(t);
  if (!b) return;
  const h = await cluster(t);
  const { page, errors } = await loggedIn(b, h.apiBase, h.viewer.token!);
  const count = (k: string) => page.locator(`[data-count="${k}"] b`).textContent();
  await page.waitForSelector('[data-count="total"]');
  t.equal(await page.textContent('[data-count="total"]'), '4');
  t.equal(await count('group:compute'), '3');
  t.equal(await count('group:login'), '1');
  t.equal(await count('state:never seen'), '4');
  await page.waitForSelector('[data-count="verdict:RELOAD"]');
  t.equal(await count('verdict:RELOAD'), '4', 'never seen: RELOAD');
  await page.waitForSelector('#live.on', { timeout: 10_000 });
  await page.evaluate('window.marker = 42');

  // A real check-in: n0002 fetches its init script from the node-facing port.
  const start = Date.now();
  const r = await text(`${h.base}/nodescripts/init?nodeid=52:54:00:ab:00:02`);
  t.equal(r.status, 200);
  await page.waitForSelector('[data-count="state:init"]', { timeout: 5_000 });
  const took = Date.now() - start;
  t.ok(took < 2_000, `the overview changed ${took} ms after the check-in (< 2 s)`);
  t.equal(await count('state:init'), '1');
  t.equal(await count('state:never seen'), '3');
  t.match(await page.textContent('#booting'), /n0002/, 'n0002 is booting now, with its phase');
  t.equal(await page.evaluate('window.marker'), 42, 'without a page reload');
  await shot(page, 'overview');
  t.same(errors, []);
});
