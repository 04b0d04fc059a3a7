/**
 * The node page and the shared console in headless Chromium against a real daemon. The timeline
 * picture of a node whose nodescript failed shows that step in red with its exit code, and the
 * table lists every step. An operator's reload makes a task whose phases appear on the page; a
 * viewer gets no buttons. The console (the exec driver's `console` program in a pty) is ONE
 * session for two browsers: both see the node's output, text typed by the operator reaches the
 * node and both see the answer, the viewer cannot type, closing both releases the session after
 * the grace period, and reopening shows the scrollback from the console log. The node's terminal
 * has the operator's page size: a shell in the pty answers `stty size` with it, and with the new
 * one after the window changed; a viewer's page of another size changes nothing.
 */
import t from 'tap';
import { text } from '../lib/daemon.js';
import { startApiDaemon } from '../api/lib/harness.js';
import { browser, loggedIn, shot } from './lib.js';
import type { Page } from 'playwright-core';

const CONSOLE = `#!/bin/sh
echo "console of $1 ready"
echo "boot line one"
echo "boot line two"
while IFS= read -r line; do echo "node says: $line"; done
`;

const screen = (p: Page) => p.locator('#console .xterm-rows').innerText();
async function until(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

t.test('node page: settings, timeline picture with the failed step, reload phases by role', async (t) => {
  const b = await browser(t);
  if (!b) return;
  const h = await startApiDaemon(t, 'api:\n  port: 0\n  consoleGrace: 1\n');
  h.write('nodescripts/init/all/10-hello', '#!/bin/sh\necho "echo hello"\n', 0o755);
  h.write('nodescripts/init/all/20-broken', '#!/bin/sh\necho "oops" >&2\nexit 3\n', 0o755);
  h.write('power/status', '#!/bin/sh\necho on\n', 0o755);
  h.write('power/cycle', '#!/bin/sh\nexit 0\n', 0o755);
  h.write('power/console', CONSOLE, 0o755);
  await h.daemon.registry.addNode({ name: 'n0001', nodeid: '52:54:00:cd:00:01', group: 'compute', attrs: { 'power.driver': 'exec', 'power.dir': 'power', rack: 'r12' } });
  t.equal((await text(`${h.base}/nodescripts/init?nodeid=52:54:00:cd:00:01`)).status, 200, 'n0001 fetched its init script (20-broken failed in it)');

  const { page, errors } = await loggedIn(b, h.apiBase, h.operator.token!);
  await page.goto(`${h.apiBase}/ui/#/node/n0001`);
  await page.waitForSelector('#verdict');
  t.equal(await page.textContent('#verdict'), 'RELOAD');
  t.equal(await page.textContent('[data-field="group"]'), 'compute');
  t.equal(await page.textContent('[data-field="attrs.rack"]'), 'r12', 'attributes, with where they come from');
  await page.waitForSelector('#power-state:has-text("on (exec)")', { timeout: 10_000 });
  t.pass('power state from the driver');

  // Two failed steps: the script, and the init script sent with a failure in it.
  const failed = page.locator('#timeline-picture g.failed-step');
  t.equal(await failed.count(), 2, 'the failed steps in the picture');
  const broken = failed.filter({ hasText: '20-broken' });
  t.match(await broken.locator('text').textContent(), /^init 20-broken: exit 3 in /, 'the failed nodescript, with its exit code');
  t.equal(await broken.locator('circle').getAttribute('class'), 'fail', 'drawn in red');
  t.equal(await broken.locator('circle').evaluate((c) => (globalThis as unknown as { getComputedStyle(e: unknown): { fill: string } }).getComputedStyle(c).fill), 'rgb(196, 40, 28)', 'red');
  t.equal(await page.locator('#timeline-picture circle').count(), 5, 'a mark per step of the boot (the credential issued with init is one)');
  t.equal(await page.locator('#timeline tr.failed').count(), 2, 'and the table has them too');

  // A step arriving live is added to the picture without a reload.
  t.equal((await text(`${h.base}/nodescripts/init?nodeid=52:54:00:cd:00:01`)).status, 200);
  // A function, not a string: a string is evaled at every poll, which the UI's CSP refuses (login-overview).
  await page.waitForFunction(() => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll('#timeline tr.failed').length === 4, undefined, { timeout: 5_000 });
  t.pass('a second boot attempt shows live');

  // An operator's reload: a task whose phases appear.
  await page.click('#node-actions button[data-action="reload"]');
  await page.waitForSelector('#task-phases[data-task]', { timeout: 10_000 });
  const taskId = await page.getAttribute('#task-phases', 'data-task');
  t.match((await h.operator.get(`/tasks/${taskId}`)).body, { action: 'reload', params: { nodes: ['n0001'] } }, 'the button made a reload task');
  await page.waitForSelector('#task-phases [data-phase]', { timeout: 15_000 });
  t.ok((await page.locator('#task-phases [data-phase]').count()) >= 1, `phases shown: ${(await page.locator('#task-phases [data-phase]').allTextContents()).join(' > ')}`);
  await shot(page, 'node');

  const v = await loggedIn(b, h.apiBase, h.viewer.token!);
  await v.page.goto(`${h.apiBase}/ui/#/node/n0001`);
  await v.page.waitForSelector('#power-state');
  t.equal(await v.page.locator('#node-actions button').count(), 0, 'a viewer sees no power buttons');
  t.same([...errors, ...v.errors], []);
});

t.test('one shared console: two browsers, typing, release after the grace, scrollback', async (t) => {
  const b = await browser(t);
  if (!b) return;
  const h = await startApiDaemon(t, 'api:\n  port: 0\n  consoleGrace: 1\n');
  h.write('power/status', '#!/bin/sh\necho on\n', 0o755);
  h.write('power/console', CONSOLE, 0o755);
  await h.daemon.registry.addNode({ name: 'n0001', nodeid: '52:54:00:cd:00:01', attrs: { 'power.driver': 'exec', 'power.dir': 'power' } });

  const op = await loggedIn(b, h.apiBase, h.operator.token!);
  const vw = await loggedIn(b, h.apiBase, h.viewer.token!);
  for (const p of [op.page, vw.page]) {
    await p.goto(`${h.apiBase}/ui/#/node/n0001`);
    await p.click('#console-open');
  }
  await until(async () => (await screen(op.page)).includes('boot line two') && (await screen(vw.page)).includes('boot line two'), 15_000, 'the output in both pages');
  t.pass('both pages show the node output');
  await until(async () => (await vw.page.textContent('#console-viewers')) === '2 watching', 5_000, '2 watching');
  t.equal((await screen(vw.page)).split('console of n0001 ready').length - 1, 1, 'the viewer who joined second saw the start once (scrollback, not a second session)');

  // The operator types; the node answers; both see it.
  await op.page.click('#console .xterm');
  await op.page.keyboard.type('hello from the web');
  await op.page.keyboard.press('Enter');
  await until(async () => (await screen(vw.page)).includes('node says: hello from the web'), 10_000, 'the answer in the viewer page');
  t.pass("the operator's text reached the node, the viewer saw the answer");
  await vw.page.click('#console .xterm');
  await vw.page.keyboard.type('viewer typing');
  await vw.page.keyboard.press('Enter');
  await new Promise((r) => setTimeout(r, 1000));
  t.notMatch(await screen(op.page), /viewer typing/, "a viewer's keys never reach the node");
  await shot(op.page, 'console');

  // Both leave: the session ends after the grace period (consoleGrace 1 s).
  await op.page.click('#console-close');
  await vw.page.goto(`${h.apiBase}/ui/#/`);
  const log = `${h.statedir}/var/log/console/n0001.log`;
  const { readFileSync } = await import('node:fs');
  await until(async () => /console closed ---/.test(readFileSync(log, 'utf8')), 10_000, 'the session to close');
  t.match(readFileSync(log, 'utf8'), /console opened by the web UI \(t-operator \(operator\)\)[\s\S]*node says: hello from the web[\s\S]*console closed ---/, 'one session, logged, closed once the last viewer left');
  t.equal(readFileSync(log, 'utf8').split('console opened').length - 1, 1, 'opened once for two viewers');

  // Reopening: a new session, whose screen starts with the scrollback of the last one.
  await vw.page.goto(`${h.apiBase}/ui/#/node/n0001`);
  await vw.page.click('#console-open');
  await until(async () => (await screen(vw.page)).includes('node says: hello from the web'), 10_000, 'the scrollback');
  t.pass('reopening shows the scrollback from the console log');
  t.same([...op.errors, ...vw.errors], []);
});

t.test("console size: the node's terminal follows the operator's page (stty size), not a viewer's", async (t) => {
  const b = await browser(t);
  if (!b) return;
  const h = await startApiDaemon(t, 'api:\n  port: 0\n  consoleGrace: 1\n');
  h.write('power/status', '#!/bin/sh\necho on\n', 0o755);
  // A shell in the exec console's pty: `stty size` prints the rows and columns its terminal has.
  h.write('power/console', '#!/bin/sh\nPS1="$ " exec /bin/sh\n', 0o755);
  await h.daemon.registry.addNode({ name: 'n0001', nodeid: '52:54:00:cd:00:01', attrs: { 'power.driver': 'exec', 'power.dir': 'power' } });

  const op = await loggedIn(b, h.apiBase, h.operator.token!);
  await op.page.goto(`${h.apiBase}/ui/#/node/n0001`);
  await op.page.click('#console-open');
  const pageSize = async (p: Page) => ({ cols: Number(await p.getAttribute('#console', 'data-cols')), rows: Number(await p.getAttribute('#console', 'data-rows')) });
  const nodeSize = (p: Page) => p.textContent('#console-size');
  /** Types `stty size` on the node's shell and returns its answer, `ROWS COLS`. */
  const sttySize = async (p: Page, mark: string) => {
    await p.click('#console .xterm');
    await p.keyboard.type(`echo ${mark}-$(stty size)`);
    await p.keyboard.press('Enter');
    let m = null as RegExpExecArray | null;
    await until(async () => (m = new RegExp(`${mark}-(\\d+ \\d+)`).exec(await screen(p))) !== null, 10_000, `the answer to stty size (${mark})`);
    return m![1];
  };

  await until(async () => /^node terminal \d+x\d+$/.test((await nodeSize(op.page)) ?? ''), 15_000, 'the node terminal size');
  const wide = await pageSize(op.page);
  t.equal(await nodeSize(op.page), `node terminal ${wide.cols}x${wide.rows}`, `the page's terminal size (${wide.cols}x${wide.rows}) was sent to the node`);
  t.equal(await sttySize(op.page, 'wide'), `${wide.rows} ${wide.cols}`, "stty size on the node answers the page's size");

  // A smaller window (a laptop's): the terminal fits it again, and the node learns it.
  await op.page.setViewportSize({ width: 900, height: 560 });
  await until(async () => (await pageSize(op.page)).cols !== wide.cols, 5_000, 'the terminal to fit the smaller window');
  const small = await pageSize(op.page);
  t.ok(small.cols < wide.cols && small.rows < wide.rows, `the terminal shrank to ${small.cols}x${small.rows}`);
  await until(async () => (await nodeSize(op.page)) === `node terminal ${small.cols}x${small.rows}`, 5_000, 'the new size at the node');
  t.equal(await sttySize(op.page, 'small'), `${small.rows} ${small.cols}`, 'stty size answers the new rows and columns');

  // A viewer on a large screen watches: the node keeps the operator's size.
  const vw = await loggedIn(b, h.apiBase, h.viewer.token!, { width: 1600, height: 1000 });
  await vw.page.goto(`${h.apiBase}/ui/#/node/n0001`);
  await vw.page.click('#console-open');
  await until(async () => (await vw.page.getAttribute('#console-status', 'data-state')) === 'attached', 10_000, 'the viewer attached');
  await until(async () => (await pageSize(vw.page)).cols > small.cols, 5_000, "the viewer's own terminal fit");
  await new Promise((r) => setTimeout(r, 500));
  t.equal(await nodeSize(vw.page), `node terminal ${small.cols}x${small.rows}`, "the viewer sees the node's size, set by the operator");
  t.equal(await sttySize(op.page, 'after'), `${small.rows} ${small.cols}`, "a viewer's larger page changes nothing at the node");
  await shot(op.page, 'console-small');
  t.same([...op.errors, ...vw.errors], []);
});
