/**
 * bench/api: the admin API of a real `provisiond serve` holding 10,000 registered nodes, with the
 * DHCP server on in the same daemon. In a lab (bench/dhcp's: the server namespace and a client one
 * joined by a veth), from the client namespace:
 *
 * 1. perfdhcp at DHCP_RATE DORA/s alone: its drops (the reference);
 * 2. `GET /api/v1/nodes?limit=500` and `GET /api/v1/nodes/{n}` (a random node each time), each for
 *    SECONDS at CONCURRENCY connections: requests/s, p50 and p99, alone;
 * 3. the same two while perfdhcp runs at DHCP_RATE DORA/s against the same daemon: the API's figures
 *    and perfdhcp's drops, to be no worse than alone;
 * 4. an events subscriber (`GET /events?kind=timeline`) while 1,000 nodes post 5 timeline reports
 *    each at once: it must receive every one of the 5,000, ids without a hole, no gap.
 *
 * There is no peer API to measure against: the ratio columns compare with-DHCP to alone.
 * Env: API_BENCH_SECONDS (per phase, default 10), API_BENCH_CONCURRENCY (8), API_BENCH_DHCP_RATE (1000),
 * API_BENCH_NODES (10000).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { onCleanup } from '../test/lib/cleanup.js';
import { ServeProcess } from '../test/lib/daemon.js';
import { isRoot } from '../test/lib/gate.js';
import { Lab } from '../test/lib/netns.js';
import { CLI, REPO } from '../test/lib/paths.js';
import { sleep } from '../test/lib/sleep.js';
import { BenchResults } from './lib/results.js';

const DEFAULTS = { SECONDS: '10', CONCURRENCY: '8', DHCP_RATE: '1000', NODES: '10000' };
const setting = (k: keyof typeof DEFAULTS) => Number(process.env[`API_BENCH_${k}`] ?? DEFAULTS[k]);
const SECONDS = setting('SECONDS');
const CONCURRENCY = setting('CONCURRENCY');
const DHCP_RATE = setting('DHCP_RATE');
const NODES = setting('NODES');
const BURST_NODES = Math.min(1000, NODES);
const BURST_EVENTS = 5;

const results = new BenchResults('api', { envPrefix: 'API_BENCH_' });
for (const [k, v] of Object.entries(DEFAULTS)) {
  const value = process.env[`API_BENCH_${k}`];
  if (value !== undefined && value !== v) results.nonDefault(`API_BENCH_${k}=${value} (default ${v})`);
}

if (!existsSync('/usr/sbin/perfdhcp')) {
  console.log('bench/api: /usr/sbin/perfdhcp missing (apt-get install kea-admin); skipped');
  process.exit(0);
}
if (!isRoot) {
  console.log('bench/api: needs root for network namespaces; skipped');
  process.exit(0);
}

const lab = new Lab('pvd-apib', { ipv6: false });
const dir = mkdtempSync(join(tmpdir(), 'pvd-apib-'));
const unregister = onCleanup(() => rmSync(dir, { recursive: true, force: true }));
const [S, C] = lab.nss('s', 'c');
const iface = `va${process.pid}`;
lab.link({ ns: S, dev: iface, addr: '10.100.0.1/16' }, { ns: C, dev: 'eth0', addr: '10.100.0.2/16' });

const HTTP = 'http://10.100.0.1:8080';
const API = 'http://10.100.0.1:9870/api/v1';
const mac = (i: number) => `02:bb:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

interface Dora {
  sent: number;
  drops: number;
  rate: number;
}

let perfRuns = 0;
/** perfdhcp in the client namespace, as bench/dhcp runs it (its own base MAC per run: new clients). */
async function perfdhcp(rate: number, seconds: number): Promise<Dora> {
  const args = ['-4', '-l', 'eth0', '-b', `mac=02:${(++perfRuns).toString(16).padStart(2, '0')}:00:00:00:00`, '-r', String(rate), '-R', '10000000', '-p', String(seconds), '-W', '1000000', '10.100.0.1'];
  // perfdhcp exits 3 when packets were dropped; its report is still on stdout.
  const out = await lab.run(C, 'perfdhcp', args, (seconds + 30) * 1000).catch((err: { stdout?: string }) => String(err.stdout ?? ''));
  const [, doPart = '', raPart = ''] = out.split(/\*\*\*Statistics for: /);
  const num = (re: RegExp, from: string) => Number(re.exec(from)?.[1] ?? NaN);
  return { sent: num(/sent packets: (\d+)/, doPart), drops: num(/drops: (\d+)/, doPart) + num(/drops: (\d+)/, raPart), rate: num(/Rate: ([\d.]+)/, out) };
}

interface Load {
  ok: number;
  failed: number;
  statuses: Record<string, number>;
  rps: number;
  p50: number;
  p99: number;
}

/** bench/lib/api-client.ts in the client namespace; resolves with its last line, parsed. */
function client(mode: string, args: string[], onLine?: (line: string) => void): Promise<unknown> {
  const p = lab.spawn(C, process.execPath, ['--import', 'tsx', join(REPO, 'bench/lib/api-client.ts'), mode, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  let last = '';
  createInterface({ input: p.stdout! }).on('line', (l) => {
    last = l;
    onLine?.(l);
  });
  return new Promise((resolve, reject) =>
    p.once('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`api-client ${mode} exited ${code}`);
        resolve(JSON.parse(last));
      } catch (err) {
        reject(err as Error);
      }
    }),
  );
}

/** A latency (null when there was no 2xx answer to time). */
const ms = (x: number | null) => (typeof x === 'number' ? `${x.toFixed(1)} ms` : 'n/a');

const load = (path: string, token: string) => client('load', [`${API}${path}`, token, String(SECONDS), String(CONCURRENCY)]) as Promise<Load>;

let daemon: ServeProcess | null = null;
const measured: Record<string, Load> = {};
const dhcp: Record<string, Dora> = {};
interface Received {
  received: number;
  gaps: number;
  holes: number;
  spanMs: number;
}
// Set inside the try below (the cast keeps TypeScript from narrowing it to null after it).
let events = null as Received | null;
let burstMs = 0;
try {
  const configPath = join(dir, 'provisiond.yaml');
  for (const d of ['nodescripts/init/all', 'nodescripts/ready/all', 'files', 'vnfs', 'tftp']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(
    configPath,
    `statedir: ${dir}\ndatabase: sqlite:provisiond.db\nmaster: 10.100.0.1\ndefaults:\n  autoRegister: false\n` +
      `http:\n  listen: 10.100.0.1\n  port: 8080\ntftp:\n  enabled: false\n` +
      `dhcp:\n  enabled: true\n  interface: ${iface}\n  range: [10.100.1.0, 10.100.255.254]\n  netmask: 255.255.0.0\n  leaseTime: 43200\n` +
      `api:\n  listen: 10.100.0.1\n  port: 9870\n  insecure: true\n` +
      // The burst's nodes never fetched an init script: they hold no credential (the stream is measured here).
      `security:\n  nodeCredentials: false\n`,
  );
  // 10,000 nodes through the CLI, as an admin registers a cluster.
  writeFileSync(join(dir, 'nodes.ethers'), Array.from({ length: NODES }, (_, i) => `${mac(i + 1)} n${String(i + 1).padStart(5, '0')}`).join('\n') + '\n');
  execFileSync(process.execPath, [CLI, '--config', configPath, 'node', 'import', join(dir, 'nodes.ethers')], { cwd: REPO, stdio: 'inherit' });
  const token = execFileSync(process.execPath, [CLI, '--config', configPath, 'token', 'create', 'bench', '--role', 'viewer'], { cwd: REPO, encoding: 'utf8' }).trim();
  writeFileSync(join(dir, 'burst.macs'), Array.from({ length: BURST_NODES }, (_, i) => mac(i + 1)).join('\n') + '\n');

  daemon = await ServeProcess.start({ configPath, netns: { lab, ns: S }, logFile: join(dir, 'serve.log') });
  await sleep(1000);
  console.log(`-- ${NODES} nodes registered; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

  await perfdhcp(200, 2); // warm-up
  dhcp.alone = await perfdhcp(DHCP_RATE, SECONDS);
  console.log(`   DHCP alone at ${DHCP_RATE}/s: ${dhcp.alone.drops} drops of ${dhcp.alone.sent}`);
  await load('/nodes?limit=500', token); // warm-up (JIT, page cache)
  for (const [name, path] of [['list', '/nodes?limit=500'], ['get', '/nodes/{n}']] as const) {
    measured[`${name} alone`] = await load(path, token);
    const [withDhcp, dora] = await Promise.all([load(path, token), perfdhcp(DHCP_RATE, SECONDS)]);
    measured[`${name} with dhcp`] = withDhcp;
    dhcp[`with ${name}`] = dora;
    for (const k of [`${name} alone`, `${name} with dhcp`]) {
      const m = measured[k]!;
      console.log(`   GET ${path} ${k}: ${m.rps.toFixed(0)} req/s, p50 ${ms(m.p50)}, p99 ${ms(m.p99)} (${m.failed} not 2xx: ${JSON.stringify(m.statuses)})`);
    }
    console.log(`   DHCP at ${DHCP_RATE}/s with ${name}: ${dora.drops} drops of ${dora.sent}`);
  }

  // A boot storm's timeline, watched by one subscriber.
  let ready!: () => void;
  const connected = new Promise<void>((r) => (ready = r));
  const expect = BURST_NODES * BURST_EVENTS;
  const sub = client('subscribe', [`${API}/events?kind=timeline`, token, String(expect), '15000'], (l) => l === 'ready' && ready());
  await connected;
  const burst = (await client('burst', [HTTP, join(dir, 'burst.macs'), String(BURST_EVENTS), '64'])) as { ok: number; failed: number; ms: number };
  burstMs = burst.ms;
  events = (await sub) as Received;
  console.log(`   burst: ${burst.ok} timeline reports from ${BURST_NODES} nodes in ${burst.ms.toFixed(0)} ms (${burst.failed} failed); subscriber got ${events!.received} of ${expect}, ${events!.holes} holes, ${events!.gaps} gaps`);
} finally {
  await daemon?.stop();
  lab.destroy();
  rmSync(dir, { recursive: true, force: true });
  unregister();
}

const missing = Object.entries(measured).filter(([, m]) => m.ok === 0).map(([k, m]) => `${k}: ${JSON.stringify(m.statuses)}`);
if (missing.length > 0) {
  // A build without the /nodes routes (or a broken one): no figures to write.
  console.log(`bench/api: the /nodes requests got no 2xx answer (${missing.join('; ')}); bench/RESULTS.md not written`);
  process.exit(1);
}

const pct = (d: Dora | undefined) => (d && d.sent > 0 ? `${d.drops} of ${d.sent} (${((100 * d.drops) / d.sent).toFixed(2)} %)` : 'n/a');
const fig = (m: Load | undefined) => (m ? `${Math.round(m.rps).toLocaleString('en')} req/s, p50 ${ms(m.p50)}, p99 ${ms(m.p99)}` : 'n/a');
const ratio = (a: Load | undefined, b: Load | undefined) => (a && b && b.rps > 0 ? `${(a.rps / b.rps).toFixed(2)}x` : 'n/a');
const expect = BURST_NODES * BURST_EVENTS;
results.write({
  name: 'api',
  title:
    `\`bench/api.ts\`: a real \`provisiond serve\` with ${NODES.toLocaleString('en')} registered nodes and its DHCP server on; from another namespace, ` +
    `${CONCURRENCY} keep-alive connections for ${SECONDS} s per figure (viewer token), alone and while perfdhcp asks ${DHCP_RATE.toLocaleString('en')} DORA/s of the same daemon. ` +
    `No peer serves this API: the ratio is with DHCP load / alone. DHCP drops are perfdhcp's, over the same ${SECONDS} s.`,
  columns: [{ title: 'measure' }, { title: 'alone', align: 'right' }, { title: `with ${DHCP_RATE.toLocaleString('en')} DORA/s`, align: 'right' }, { title: 'with / alone', align: 'right' }],
  rows: [
    ['`GET /api/v1/nodes?limit=500`', fig(measured['list alone']), fig(measured['list with dhcp']), ratio(measured['list with dhcp'], measured['list alone'])],
    ['`GET /api/v1/nodes/{n}` (random node)', fig(measured['get alone']), fig(measured['get with dhcp']), ratio(measured['get with dhcp'], measured['get alone'])],
    ['DHCP drops (perfdhcp)', pct(dhcp.alone), `${pct(dhcp['with list'])} with list; ${pct(dhcp['with get'])} with get`, '-'],
    [
      `events subscriber, ${BURST_NODES.toLocaleString('en')} nodes x ${BURST_EVENTS} timeline reports at once`,
      events ? `${events.received.toLocaleString('en')} of ${expect.toLocaleString('en')} received, ${events.holes} holes, ${events.gaps} gaps (burst ${Math.round(burstMs)} ms)` : 'n/a',
      '-',
      '-',
    ],
  ],
});
if (events && events.received !== expect) process.exitCode = 1;
