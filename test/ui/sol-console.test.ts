/**
 * The web console of a node behind a BMC: OpenIPMI's ipmi_sim through the real ipmitool (the ipmi
 * driver's `sol activate` in a pty), in headless Chromium. The BMC has ONE SOL session:
 * - one left active by another client whose ipmitool was killed with -9 (the BMC itself refuses a
 *   plain `sol activate` then) does not block the web console: it opens and carries the node's text;
 * - a closed console frees the BMC's SOL after the grace: another client's `sol activate` is then
 *   accepted without any deactivation;
 * - one still held by another running ipmitool is taken over: the web console opens and gets the
 *   node's answers, the other client none;
 * - a BMC that still refuses (SOL disabled on it) is named in the page, in ipmitool's words.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pty from 'node-pty';
import type { Page } from 'playwright-core';
import { startApiDaemon } from '../api/lib/harness.js';
import { gate } from '../lib/gate.js';
import { haveIpmiSim, IPMI_PASSWORD, IPMI_USER, startIpmiSimWithLine } from '../power/lib/ipmi-sim.js';
import { browser, loggedIn, shot } from './lib.js';

async function until(cond: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

if (gate(t, haveIpmiSim() ? null : 'ipmi_sim or ipmitool not installed (Debian packages openipmi, ipmitool)')) {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-ui-sol-'));
  // The node's serial line, getty-like: Enter gets a login prompt.
  const sim = await startIpmiSimWithLine(t, dir, (s) => s.on('data', (d) => d.includes(0x0d) && s.write('\r\nn0001 login: ')));
  // Cipher suite 1: ipmi_sim's SOL does not do encrypted payloads (as test/power/ipmi.test.ts).
  const base = ['-I', 'lanplus', '-H', '127.0.0.1', '-p', sim.address.split(':')[1]!, '-U', IPMI_USER, '-E', '-C', '1'];
  const env = { ...process.env, IPMI_PASSWORD };
  const ipmitool = (...args: string[]) => spawnSync('ipmitool', [...base, ...args], { env, encoding: 'utf8', timeout: 20_000 });

  /** Another admin's `ipmitool sol activate` in a terminal of its own. */
  const otherClient = () => {
    const p = pty.spawn('ipmitool', [...base, 'sol', 'activate'], { name: 'xterm', cols: 80, rows: 24, env: env as Record<string, string> });
    let out = '';
    let exited = false;
    p.onData((d) => (out += d));
    const gone = new Promise<void>((r) =>
      p.onExit(() => {
        exited = true;
        r();
      }),
    );
    t.teardown(() => void (exited || p.kill('SIGKILL')));
    return { p, output: () => out, exited: () => exited, gone };
  };

  t.test('a stale SOL session never blocks the web console; a closed tab frees it; a refusal is named', async (t) => {
    const b = await browser(t);
    if (!b) return;
    t.equal(ipmitool('chassis', 'power', 'on').status, 0, 'the node is powered on');
    const h = await startApiDaemon(t, 'api:\n  port: 0\n  consoleGrace: 1\n');
    await h.daemon.registry.addNode({
      name: 'n0001',
      nodeid: '52:54:00:5e:00:01',
      attrs: { 'power.driver': 'ipmi', 'power.address': sim.address, 'power.user': IPMI_USER, 'power.password': IPMI_PASSWORD, 'power.args': '-C 1' },
    });
    const screen = (p: Page) => p.locator('#console .xterm-rows').innerText();
    const status = (p: Page) => p.textContent('#console-status');
    /** Opens the console and presses Enter until the node's login prompt shows. */
    const openAndLogin = async (p: Page) => {
      await p.click('#console-open');
      await until(async () => (await p.getAttribute('#console-status', 'data-state')) !== null, 40_000, 'the console to attach or fail');
      t.equal(await p.getAttribute('#console-status', 'data-state'), 'attached', `the console opened: ${await status(p)}`);
      for (let i = 0; i < 30 && !(await screen(p)).includes('n0001 login:'); i++) {
        await p.click('#console .xterm');
        await p.keyboard.press('Enter');
        await new Promise((r) => setTimeout(r, 300));
      }
      t.match(await screen(p), /n0001 login:/, "the node's serial line answers through SOL");
    };
    const closeAndRelease = async (p: Page) => {
      const closed = () => h.log.lines.filter((l) => l.msg === 'console: n0001 closed (no viewer left)').length;
      const before = closed();
      await p.click('#console-close');
      // api.consoleGrace is 1 s; the session's close runs `sol deactivate`, and is logged once that returned.
      await until(() => closed() > before, 20_000, 'the session to close');
      t.match(readLog(h.statedir), /console closed ---\n$/, 'the console log says it closed');
    };

    // 1. An ipmitool killed with -9 leaves the BMC's SOL active: the BMC refuses a plain activate.
    const killed = otherClient();
    await until(() => killed.output().includes('SOL Session operational'), 20_000, "the other client's SOL session");
    process.kill(killed.p.pid, 'SIGKILL');
    await killed.gone;
    const refused = otherClient();
    await refused.gone;
    t.match(refused.output(), /already active/i, `the stale session is real: the BMC refuses another (${refused.output().trim()})`);

    const op = await loggedIn(b, h.apiBase, h.operator.token!);
    await op.page.goto(`${h.apiBase}/ui/#/node/n0001`);
    await openAndLogin(op.page);
    t.match(await status(op.page), /^attached via ipmitool sol activate \(127\.0\.0\.1:\d+\)/, 'the stale session was reclaimed');
    await shot(op.page, 'console-sol');

    // 2. A closed console frees the BMC's SOL after the grace: another client gets it as is.
    await closeAndRelease(op.page);
    const running = otherClient();
    await until(() => running.output().includes('SOL Session operational') || running.exited(), 20_000, "the other client's activation");
    t.match(running.output(), /SOL Session operational/, 'after the grace the BMC accepts a plain sol activate: the web console released it');

    // 3. That client still runs: the web console takes the session over. (ipmi_sim does not tell the
    // other ipmitool, which keeps running; it no longer gets what the node prints.)
    await op.page.reload();
    await op.page.waitForSelector('#console-open');
    await openAndLogin(op.page);
    t.notMatch(running.output(), /n0001 login:/, "the other client's session was taken: the node's answers come to the web console only");

    // 4. A BMC that still refuses: SOL disabled on it. The page names the refusal.
    await closeAndRelease(op.page);
    t.equal(ipmitool('sol', 'set', 'enabled', 'false', '1').status, 0, 'SOL disabled on the BMC');
    try {
      await op.page.click('#console-open');
      await until(async () => (await op.page.getAttribute('#console-status', 'data-state')) === 'error', 40_000, 'the refusal');
      t.match(await status(op.page), /^the console of n0001 could not be opened: ipmitool sol activate \(127\.0\.0\.1:\d+\): Info: SOL payload disabled$/, `the page names the BMC's refusal: ${await status(op.page)}`);
      await shot(op.page, 'console-sol-refused');
    } finally {
      ipmitool('sol', 'set', 'enabled', 'true', '1');
    }
    t.same(op.errors, []);
  });
}

function readLog(statedir: string): string {
  const file = join(statedir, 'var/log/console/n0001.log');
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}
