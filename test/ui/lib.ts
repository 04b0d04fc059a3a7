/**
 * The web UI in a real browser: Debian's Chromium driven by playwright-core (headless, fresh
 * profile), pages logged in with a token through the login form, every script error and failed
 * request recorded, and screenshots written to the test's output folder.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { gate } from '../lib/gate.js';
import type { Teardown } from '../lib/statedir.js';

export const CHROMIUM = '/usr/bin/chromium';
/** The flags every headless Chromium of the tests and bench/ui starts with. */
export const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** Where screenshots go: test/ui/output (ignored by git). */
export const SHOTS = join(import.meta.dirname, 'output');

type Tap = Teardown & Parameters<typeof gate>[0];

/** A browser for the test, or null (the test skipped) when Chromium is missing. */
export async function browser(t: Tap): Promise<Browser | null> {
  if (!gate(t, existsSync(CHROMIUM) ? null : `${CHROMIUM} missing (apt-get install chromium)`)) return null;
  const b = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  t.teardown(() => closeBrowser(b));
  return b;
}

/**
 * Closes the browser; one that has not exited after 15 s is killed. Twice in CI (a loaded machine)
 * a test's teardown hung for its whole timeout with only the browser's pipes open: Playwright's
 * close() waits for the process to exit, however long.
 */
async function closeBrowser(b: Browser): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(r, 15_000, 'late')));
  const closing = b.close().then(() => 'closed' as const);
  const how = await Promise.race([closing, late]);
  clearTimeout(timer);
  if (how === 'closed') return;
  for (const pid of childPids()) {
    try {
      if (/chrom/.test(readFileSync(`/proc/${pid}/comm`, 'utf8'))) process.kill(pid, 'SIGKILL');
    } catch {}
  }
  await Promise.race([closing, new Promise((r) => setTimeout(r, 5000))]);
}

/** This process's children, from /proc. */
function childPids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      try {
        return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]) === process.pid;
      } catch {
        return false;
      }
    });
}

export interface UiPage {
  page: Page;
  /** Script errors and failed loads seen so far. */
  errors: string[];
}

/** A new browser context (its own cookies) with the UI opened and logged in with `token`. */
export async function loggedIn(b: Browser, apiBase: string, token: string, size = { width: 1280, height: 720 }): Promise<UiPage> {
  const ctx = await b.newContext({ viewport: size });
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && errors.push(m.text()));
  page.on('response', (r) => {
    const path = new URL(r.url()).pathname;
    // 401s on purpose (a viewer's refused power request, the first GET /session) are the tests' own business.
    if (r.status() >= 400 && path !== '/favicon.ico' && r.status() !== 401 && r.status() !== 403) errors.push(`${r.status()} ${r.url()}`);
  });
  await page.goto(`${apiBase}/ui/`);
  await page.fill('#login input[name=token]', token);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#top:not([hidden])', { timeout: 15_000 });
  return { page, errors };
}

export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}
