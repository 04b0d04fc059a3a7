/**
 * /api/docs, the API's reference page, as an admin's browser shows it: served from the package
 * with no external URL (the cluster network has no internet), and rendered by headless Chromium
 * (the system's, driven by playwright-core) into one entry per operation of the document.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { gate } from '../lib/gate.js';
import { startApiDaemon } from './lib/harness.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

t.test('/api/docs is self-contained', async (t) => {
  const h = await startApiDaemon(t);
  const res = await fetch(`${h.apiBase}/api/docs`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^text\/html/);
  t.match(res.headers.get('content-security-policy'), /default-src 'self'/, 'the browser may load nothing from elsewhere');
  const html = await res.text();
  t.same(html.match(/(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/gi) ?? [], [], 'no external URL');
  t.notMatch(html, /<(script|link|img)[^>]+(src|href)=/i, 'no script, stylesheet or image loaded from a file');
  t.equal((await fetch(`${h.apiBase}/api/docs/`)).status, 200, 'with a trailing slash too');
  t.equal((await fetch(`${h.apiBase}/api/docs`, { headers: { authorization: 'Bearer nonsense' } })).status, 200, 'no token needed');
});

t.test('headless Chromium renders every operation of the document', async (t) => {
  if (!gate(t, existsSync(CHROMIUM) ? null : `${CHROMIUM} missing (apt-get install chromium)`)) return;
  const h = await startApiDaemon(t);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const origins = new Set<string>();
  page.on('request', (r) => origins.add(new URL(r.url()).origin));
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // A failed load is checked by its URL below (the browser asks for /favicon.ico on its own).
  page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && errors.push(m.text()));
  const failed: string[] = [];
  page.on('response', (r) => r.status() >= 400 && new URL(r.url()).pathname !== '/favicon.ico' && failed.push(`${r.status()} ${r.url()}`));
  await page.goto(`${h.apiBase}/api/docs`);
  await page.waitForSelector('.op', { timeout: 15_000 });

  const shown = await page.locator('.op').count();
  t.equal(shown, h.doc.operations.length, `${shown} operations shown, as many as the document has`);
  const rows = await page.locator('.op').evaluateAll((els) => els.map((e) => `${e.querySelector('.m')!.textContent!.toLowerCase()} ${e.querySelector('.path')!.textContent}`));
  t.same(rows.sort(), h.doc.operations.map((o) => `${o.method} ${o.path}`).sort(), 'each one, method and path');
  const tags = [...new Set(h.doc.operations.map((o) => o.tags[0]))];
  t.same(await page.locator('nav#toc a').allTextContents(), tags, 'a table of contents by tag');
  t.match(await page.locator('#sub').textContent(), /^version \d+\.\d+\.\d+$/);
  const whoami = page.locator('.op', { hasText: '/whoami' });
  t.match(await whoami.textContent(), /viewer/, 'the role an operation needs');
  t.same(errors, [], 'no script error');
  t.same(failed, [], 'nothing it loads fails');
  t.same([...origins], [new URL(h.apiBase).origin], 'every request went to the daemon itself');
});
