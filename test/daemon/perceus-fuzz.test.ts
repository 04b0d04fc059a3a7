/**
 * The Perceus TCP protocol (config `perceus`), fuzzed:
 * - its request-line parser: 100,000 coverage-guided inputs (test/lib/fuzz.ts): a script request
 *   always names one state word and a normalized hardware address;
 * - a real `provisiond serve`: 20,000 hostile connections (mutated request lines, binary noise, lines
 *   past 4 KiB, connections closed before a line, silent ones left to time out). Each connection is
 *   counted once by outcome in the metrics, the daemon keeps serving, a real client (busybox nc, as
 *   the Perceus C client talks: one line, then read to the end) gets its node's script right after,
 *   and the daemon's descriptors come back to where they were.
 */
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { mutate, rng, runGuided } from '../lib/fuzz.js';
import { startFuzzDaemon, until } from '../lib/fuzz-daemon.js';
import { gate, missingCommands } from '../lib/gate.js';
import { sumOf } from '../lib/prom-text.js';

const PARSED = 100_000;
/** Connections to the real daemon: each carries one line, so they cost far more than a datagram. */
const COUNT = Number(process.env.FUZZ_COUNT ?? 20_000); // FUZZ_COUNT: another count while debugging
const NODE = '52:54:00:aa:00:01';

t.test('the request-line parser: 100,000 coverage-guided inputs', async (t) => {
  const report = await runGuided('perceus', PARSED, 13);
  t.same(report.findings, [], 'every parsed script request names one state word and a normalized MAC');
  t.equal(report.runs, PARSED);
  t.ok(report.blocks > report.seedBlocks, `coverage grew beyond the seeds (${report.seedBlocks} -> ${report.blocks} blocks)`);
});

if (!gate(t, missingCommands(['busybox']).length ? 'perceus fuzz: needs busybox (nc)' : null)) process.exit(0);

/** One connection: writes `input` (or nothing), half-closes unless `hold`, resolves when it closed. */
function exchange(port: number, input: Buffer | null, hold = false): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => resolve(out));
    s.on('connect', () => {
      if (input) s.write(input);
      if (!hold) s.end();
    });
    s.setTimeout(30_000, () => s.destroy());
  });
}

t.test('a real daemon: 20,000 hostile connections, then a real client', async (t) => {
  const d = await startFuzzDaemon(t, { 'nodescripts/init/all/10-hello': '#!/bin/sh\necho "echo hello from $NODENAME"\n' });
  // A registered node, as `node add` makes it.
  await promisify(execFile)(process.execPath, ['bin/provisiond.js', '--config', `${d.statedir}/provisiond.yaml`, 'node', 'add', NODE, 'pc0001']);
  const outcomes = () => d.count('provisiond_perceus_connections_total');
  const socketsBefore = d.sockets();
  const base = await outcomes();

  const seeds = [`init nodeid=${NODE}\n`, `ready nodeid=${NODE} nodename=pc0001\r\n`, 'ping 4242\n', 'log booting\n', 'init nodeid=00:00:00:00:00:00\n', 'init\n'].map((s) => Buffer.from(s));
  const dict = ['nodeid=', 'nodename=', 'ping ', 'log ', 'init', NODE, '\n', '\r\n', ' ', '\0', '%s%n'].map((s) => Buffer.from(s));
  const r = rng(77);
  const began = Date.now();
  const CONCURRENCY = 48;
  let next = 0;
  let scripts = 0;
  const worker = async () => {
    while (next < COUNT) {
      const i = next++;
      let input: Buffer | null;
      if (i % 1000 === 0) input = Buffer.alloc(5000, 'A'); // a line past 4 KiB: cut
      else if (i % 500 === 1) input = null; // connects and closes without a line
      else input = mutate(seeds[Math.floor(r() * seeds.length)]!, r, seeds, dict, 600);
      const out = await exchange(d.perceusPort, input);
      if (out.includes('# PROVISIOND END')) scripts++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  // Silent connections that never send a line are cut at the protocol's timeout (10 s).
  const silent = await Promise.all(Array.from({ length: 4 }, () => exchange(d.perceusPort, null, true)));
  const seconds = (Date.now() - began) / 1000;
  const total = (await until(outcomes, (v) => v - base >= COUNT + 4, 20_000)) - base;
  t.equal(total, COUNT + 4, `every connection is counted once by outcome (${COUNT + 4} in ${seconds.toFixed(1)} s, ${scripts} carried a script)`);
  t.equal(silent.filter((s) => s === '# PERCEUSD START\n').length, 4, 'a silent connection gets the greeting and is closed at the timeout');
  const m = await d.metrics();
  const by = (outcome: string) => sumOf(m, 'provisiond_perceus_connections_total', { outcome });
  t.ok(by('bad-request') > 0 && by('too-long') >= COUNT / 1000 && by('timeout') >= 4 && by('closed') > 0, `outcomes: ${['script', 'ping', 'log', 'bad-request', 'too-long', 'timeout', 'closed'].map((o) => `${o} ${by(o)}`).join(', ')}`);

  // A real client right after: one line, then everything until the server closes.
  // (stdin stays open, as the Perceus client's socket does: busybox nc stops at the end of its stdin)
  const stdout = await new Promise<string>((resolve) => {
    const nc = spawn('busybox', ['nc', '127.0.0.1', String(d.perceusPort)], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    nc.stdout.on('data', (b: Buffer) => (out += b.toString()));
    nc.on('exit', () => resolve(out));
    nc.stdin.write(`init nodeid=${NODE}\n`);
    setTimeout(() => nc.kill(), 30_000).unref();
  });
  t.match(stdout, /^# PERCEUSD START\n[\s\S]*echo hello from pc0001[\s\S]*# PROVISIOND END\n$/, 'busybox nc gets the node script after the fuzz');
  t.ok(d.serve.running, 'the daemon is still running');
  const sockets = await until(() => d.sockets(), (v) => v <= socketsBefore, 15_000);
  t.ok(sockets <= socketsBefore, `open sockets back to ${sockets} (${socketsBefore} before)`);
});
