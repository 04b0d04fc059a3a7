/**
 * bench/dhcp: perfdhcp (Debian kea-admin) in one namespace against, in turn, provisiond (with
 * dhcp.durability fsync, then process), ISC Kea
 * (kea-dhcp4, memfile leases persisted) and dnsmasq (no-ping, lease file) in another; same /16
 * pool, same steps, same run. For each: the highest DORA rate without drops (ladder of rates, 0.1 %
 * drop tolerance for the shared machine's noise, refined by bisection) and its latency, fresh and
 * again once about 10,000 leases exist; every step starts the server again on that state. Prints
 * them all and the ratios, and the p50/p99 latency of each at a fixed 1,000 DORA/s.
 *
 * provisiond runs the real service (registry on SQLite, batched lease writes) with
 * autoRegister off: perfdhcp's random MACs are anonymous clients, as they are for Kea and dnsmasq.
 *
 * Env: DHCP_BENCH_STEP (seconds per rate step, default 5), DHCP_BENCH_RATES (comma list),
 * DHCP_BENCH_REFINE (bisection steps past the ladder, default 2), DHCP_BENCH_SERVERS (comma list),
 * DHCP_BENCH_PRELOAD_SECONDS (default 90), DHCP_BENCH_LATENCY_RATE (DORA/s of the p50/p99 step, 1000).
 * For investigations (any of these and the run writes nothing): DHCP_BENCH_PHASES (comma list of
 * ladder, latency, loaded; default all three), DHCP_BENCH_FIXED (`rate:seconds`, a fixed-rate
 * perfdhcp step on a fresh server, with the CPU per DORA of each of its threads and their wait for
 * a CPU). DHCP_BENCH_SERVERS may name a server more than once: `kea,provisiond-process,kea,...`
 * runs them in that order, for back-to-back pairs. DHCP_BENCH_NODE_ARGS: node flags for provisiond.
 * DHCP_BENCH_PERF: perf's arguments, run over those steps, `{pid}` standing for the server's.
 * DHCP_BENCH_STALLS=1: provisiond's event-loop stalls over those steps, split by cause (the
 * fixture's DHCP_STALL_PROBE; its 1 ms timer wakes the event loop, so not for the figures). The latency and fixed steps print, per server
 * thread, CPU time, run-queue wait (schedstat run_delay) and context switches over the step.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scriptedClient } from '../test/dhcp/peers.js';
import { onCleanup } from '../test/lib/cleanup.js';
import { DhcpDaemon } from '../test/lib/daemon.js';
import { isRoot } from '../test/lib/gate.js';
import { Lab, nsExec } from '../test/lib/netns.js';
import { sleep } from '../test/lib/sleep.js';
import { BenchResults } from './lib/results.js';

const STEP = Number(process.env.DHCP_BENCH_STEP ?? 5);
const RATES = (process.env.DHCP_BENCH_RATES ?? '250,350,500,700,1000,1400,2000,2800,4000,5600,8000,11000,16000').split(',').map(Number);
const PRELOAD_SECONDS = Number(process.env.DHCP_BENCH_PRELOAD_SECONDS ?? 90);
const DROP_TOLERANCE = 0.001;
const REFINE = Number(process.env.DHCP_BENCH_REFINE ?? 2);
/** Which servers to run (comma list of provisiond (durability fsync), provisiond-process, kea, dnsmasq; default all). */
const ONLY = (process.env.DHCP_BENCH_SERVERS ?? 'provisiond,provisiond-process,kea,dnsmasq').split(',');
/** The fixed rate at which latency percentiles are taken (DORA/s, over LATENCY_SECONDS). */
const LATENCY_RATE = Number(process.env.DHCP_BENCH_LATENCY_RATE ?? 1000);
const LATENCY_SECONDS = 5;
/** Node flags for provisiond (profiling: `--cpu-prof --cpu-prof-dir=...`, `--perf-basic-prof`). */
const NODE_ARGS = (process.env.DHCP_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
/** perf arguments, `{pid}` the server's: run over the fixed and latency steps (`record -g -p {pid} -o ...`). */
const PERF = process.env.DHCP_BENCH_PERF?.split(' ').filter(Boolean) ?? null;
/** The fixture's stall probe (a 1 ms timer on provisiond's event loop: it adds wake-ups of its own). */
const STALLS = process.env.DHCP_BENCH_STALLS === '1';
/** Which parts of the run (investigations: only the latency step, say). */
const PHASES = (process.env.DHCP_BENCH_PHASES ?? 'ladder,latency,loaded').split(',');
/** A fixed-rate step with CPU accounting, `rate:seconds`, or none. */
const FIXED = process.env.DHCP_BENCH_FIXED?.split(':').map(Number) ?? null;

const results = new BenchResults('dhcp', { envPrefix: 'DHCP_BENCH_' });
for (const [name, byDefault] of [['STEP', '5'], ['RATES', '250,350,500,700,1000,1400,2000,2800,4000,5600,8000,11000,16000'], ['REFINE', '2'], ['SERVERS', 'provisiond,provisiond-process,kea,dnsmasq'], ['PRELOAD_SECONDS', '90'], ['LATENCY_RATE', '1000'], ['PHASES', 'ladder,latency,loaded'], ['FIXED', ''], ['NODE_ARGS', ''], ['PERF', ''], ['STALLS', '']]) {
  const value = process.env[`DHCP_BENCH_${name}`];
  if (value !== undefined && value !== byDefault) results.nonDefault(`DHCP_BENCH_${name}=${value} (default ${byDefault})`);
}

for (const bin of ['/usr/sbin/perfdhcp', '/usr/sbin/kea-dhcp4', '/usr/sbin/dnsmasq']) {
  if (!existsSync(bin)) {
    console.log(`bench/dhcp: ${bin} missing (apt-get install kea-admin kea-dhcp4-server dnsmasq); skipped`);
    process.exit(0);
  }
}
if (!isRoot) {
  console.log('bench/dhcp: needs root for network namespaces; skipped');
  process.exit(0);
}

interface Run {
  rate: number;
  drops: number;
  sent: number;
  latencyMs: number;
}

let runs = 0;

/**
 * One perfdhcp run. Each run gets its own base MAC: perfdhcp derives its clients' MACs from the
 * base, so two runs with the same base replay the same clients (renewals, not new leases).
 */
function perfdhcp(ns: string, rate: number, seconds: number, clients = 10_000_000, count?: number): Run {
  const args = ['-4', '-l', 'eth0', '-b', `mac=02:${(++runs).toString(16).padStart(2, '0')}:00:00:00:00`, '-r', String(rate), '-R', String(clients), '-p', String(seconds), ...(count ? ['-n', String(count)] : []), '-W', '1000000', '10.100.0.1'];
  let out: string;
  try {
    out = nsExec(ns, 'perfdhcp', args);
  } catch (err) {
    // perfdhcp exits 3 when packets were dropped; its report is still on stdout.
    out = String((err as { stdout?: string }).stdout ?? '');
  }
  const num = (re: RegExp, from = out) => Number(re.exec(from)?.[1] ?? NaN);
  const [, doPart = '', raPart = ''] = out.split(/\*\*\*Statistics for: /);
  const sent = num(/sent packets: (\d+)/, doPart);
  return {
    rate: num(/Rate: ([\d.]+)/),
    sent,
    drops: num(/drops: (\d+)/, doPart) + num(/drops: (\d+)/, raPart),
    latencyMs: num(/avg delay: ([\d.]+) ms/, doPart) + num(/avg delay: ([\d.]+) ms/, raPart),
  };
}

/**
 * The UDP counters of a namespace's kernel (/proc/net/snmp): datagrams dropped because a socket's
 * receive buffer was full (RcvbufErrors) or for any reason (InErrors), and sends refused for want
 * of buffer (SndbufErrors). Read in both namespaces around a step, they say where drops happened:
 * at the server's socket, at perfdhcp's, or neither (lost elsewhere, or late).
 */
function udpCounters(ns: string): { rcvbuf: number; inErrors: number; sndbuf: number } {
  const lines = nsExec(ns, 'cat', ['/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/).map(Number) ?? [];
  const get = (name: string): number => values[names.indexOf(name)] ?? NaN;
  return { rcvbuf: get('RcvbufErrors'), inErrors: get('InErrors'), sndbuf: get('SndbufErrors') };
}

/** What udpCounters() saw change in the server's (S) and perfdhcp's (C) namespaces over a step. */
function udpDrops(before: Record<string, ReturnType<typeof udpCounters>>): string {
  const parts: string[] = [];
  for (const [side, ns] of [['server', S], ['perfdhcp', C]] as const) {
    const a = before[side]!;
    const b = udpCounters(ns);
    parts.push(`${side} socket ${b.rcvbuf - a.rcvbuf} full, ${b.inErrors - a.inErrors} in errors, ${b.sndbuf - a.sndbuf} send refused`);
  }
  return parts.join('; ');
}

const udpNow = (): Record<string, ReturnType<typeof udpCounters>> => ({ server: udpCounters(S), perfdhcp: udpCounters(C) });

interface Server {
  name: string;
  /** Starts the server on its state folder as it is (see fresh() and restore()). */
  start(): Promise<() => Promise<void>>;
  /** Distinct leases the server holds now. */
  leases(): Promise<number>;
  /** provisiond's counters (test/dhcp/fixtures/dhcp-daemon.ts): commits, and with DHCP_BENCH_STALLS its stalls since the last call. */
  stats?(): Promise<Record<string, unknown>>;
}

const lab = new Lab('pvd-dhcpb', { ipv6: false });
const dir = mkdtempSync(join(tmpdir(), 'pvd-dhcpb-'));
let current: ChildProcess | null = null;
// Also on Ctrl-C (cleanup.ts), with the lab's namespaces and the servers in them.
const unregister = onCleanup(() => rmSync(dir, { recursive: true, force: true }));
const cleanup = async () => {
  current?.kill('SIGKILL');
  lab.destroy();
  rmSync(dir, { recursive: true, force: true });
  unregister();
};

const [S, C] = lab.nss('s', 'c');
const iface = `vb${process.pid}`;
lab.link({ ns: S, dev: iface, addr: '10.100.0.1/16' }, { ns: C, dev: 'eth0', addr: '10.100.0.2/16' });

/** The state folder of a server (its lease database and config). */
function stateDir(name: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Empties a server's state folder: no leases. */
function fresh(name: string): void {
  rmSync(join(dir, name), { recursive: true, force: true });
}

/** Keeps a copy of a stopped server's state folder (the preloaded leases) ... */
function snapshot(name: string): void {
  rmSync(join(dir, `${name}.snap`), { recursive: true, force: true });
  cpSync(join(dir, name), join(dir, `${name}.snap`), { recursive: true });
}

/** ... and puts it back before a step. */
function restore(name: string): void {
  fresh(name);
  cpSync(join(dir, `${name}.snap`), join(dir, name), { recursive: true });
}

/** provisiond with `dhcp.durability` fsync (the default) or process. */
function provisiondServer(name: string, durability: 'fsync' | 'process'): Server {
  let daemon: DhcpDaemon | null = null;
  return {
    name,
    async start() {
      const d = stateDir(name);
      const cfg = join(d, 'provisiond.yaml');
      writeFileSync(cfg, `statedir: ${d}\ndatabase: sqlite:provisiond.db\nmaster: 10.100.0.1\ndefaults:\n  autoRegister: false\ndhcp:\n  enabled: true\n  interface: ${iface}\n  range: [10.100.1.0, 10.100.255.254]\n  netmask: 255.255.0.0\n  leaseTime: 43200\n  durability: ${durability}\n`);
      daemon = await DhcpDaemon.start(lab, S, cfg, { DHCP_LOG: 'error', ...(STALLS ? { DHCP_STALL_PROBE: '1' } : {}) }, NODE_ARGS);
      current = daemon.proc;
      const started = daemon;
      return () => started.stop();
    },
    leases: async () => (await daemon!.stats()).leases!,
    stats: () => daemon!.stats(),
  };
}

const servers: Server[] = [
  provisiondServer('provisiond', 'fsync'),
  provisiondServer('provisiond-process', 'process'),
  {
    name: 'kea',
    async start() {
      const d = stateDir('kea');
      writeFileSync(
        join(d, 'kea.json'),
        JSON.stringify({
          Dhcp4: {
            'interfaces-config': { interfaces: [iface], 'dhcp-socket-type': 'udp' },
            'lease-database': { type: 'memfile', persist: true, name: join(d, 'leases4.csv'), 'lfc-interval': 3600 },
            'valid-lifetime': 43200,
            subnet4: [{ id: 1, subnet: '10.100.0.0/16', pools: [{ pool: '10.100.1.0 - 10.100.255.254' }] }],
            loggers: [{ name: 'kea-dhcp4', severity: 'ERROR', output_options: [{ output: join(d, 'kea.log') }] }],
          },
        }),
      );
      const p = lab.spawn(S, 'kea-dhcp4', ['-c', join(d, 'kea.json')], { stdio: 'ignore', env: { ...process.env, KEA_PIDFILE_DIR: d, KEA_LOCKFILE_DIR: d } });
      current = p;
      await sleep(1500);
      return async () => {
        p.kill('SIGTERM');
        await new Promise((r) => p.once('exit', r));
      };
    },
    // memfile appends a line per change; the distinct hardware addresses are the leases.
    leases: async () => new Set(readFileSync(join(dir, 'kea', 'leases4.csv'), 'utf8').split('\n').slice(1).map((l) => l.split(',')[1]).filter(Boolean)).size,
  },
  {
    name: 'dnsmasq',
    async start() {
      const d = stateDir('dnsmasq');
      const p = lab.spawn(S, 'dnsmasq', ['--no-daemon', '--conf-file=/dev/null', '--port=0', `--interface=${iface}`, '--dhcp-range=10.100.1.0,10.100.255.254,255.255.0.0,12h', `--dhcp-leasefile=${join(d, 'leases')}`, '--no-ping', '--dhcp-lease-max=200000', `--pid-file=${join(d, 'pid')}`], { stdio: 'ignore' });
      current = p;
      await sleep(1000);
      return async () => {
        p.kill('SIGTERM');
        await new Promise((r) => p.once('exit', r));
      };
    },
    leases: async () => readFileSync(join(dir, 'dnsmasq', 'leases'), 'utf8').split('\n').filter(Boolean).length,
  },
];

interface Result {
  name: string;
  best: Run | null;
  loaded: Run | null;
  preloaded: number;
  /** Microseconds of server CPU per completed DORA over the fresh ladder. */
  cpuPerDora: number;
  /** The part of it spent in the kernel (sending, receiving). */
  sysPerDora: number;
  /** DISCOVER-OFFER + REQUEST-ACK at LATENCY_RATE on a fresh server, ms. */
  latency: { n: number; p50: number | null; p99: number | null } | null;
}

/**
 * Latency percentiles at a fixed rate (perfdhcp reports only the mean): the project's scripted
 * client (test/dhcp/fixtures/dhcp-client.ts), the same for every server, LATENCY_SECONDS of new
 * clients at LATENCY_RATE, each client's DISCOVER-OFFER plus REQUEST-ACK.
 */
async function latency(server: Server): Promise<Result['latency']> {
  fresh(server.name);
  const stop = await server.start();
  try {
    perfdhcp(C, 200, 2);
    const n = LATENCY_RATE * LATENCY_SECONDS;
    const tag = (++runs & 255).toString(16).padStart(2, '0');
    const macs = Array.from({ length: n }, (_, i) => `0a:${tag}:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`);
    // As a relay, the way perfdhcp talks to every server (Kea's UDP sockets serve relayed clients only).
    await server.stats?.();
    const perfDone = perfOn();
    const t0 = threadSamples();
    const out = scriptedClient(C, { listenPort: 67, storm: { macs, rate: LATENCY_RATE, to: '10.100.0.1', giaddr: '10.100.0.3', waitMs: 2000, retryMs: 1000 } }, '10.100.0.3/16') as Array<{ latency: Result['latency']; acked: unknown[] }>;
    const r = out[0]!;
    const t1 = threadSamples();
    await perfDone();
    console.log(`   latency at ${LATENCY_RATE}/s: p50 ${r.latency?.p50} ms, p99 ${r.latency?.p99} ms (${r.latency?.n} of ${n} clients without retransmission, ${r.acked.length} bound; load ${loadavg()[0]!.toFixed(2)})`);
    printThreads(t0, t1, r.acked.length);
    await printStalls(server);
    return r.latency;
  } finally {
    await stop();
  }
}

/** DORAs completed and server CPU seconds over the steps of the fresh ladder. */
const tally = { dora: 0, cpu: 0, sys: 0 };

/**
 * CPU seconds the server process has used (all its threads), user + system and system alone:
 * independent of how busy the machine is. `current` is `ip netns exec` (and setpriv), which exec the server.
 */
function cpuSeconds(): { total: number; sys: number } {
  const pid = current?.pid;
  if (!pid) return { total: NaN, sys: NaN };
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { total: (Number(fields[11]) + Number(fields[12])) / 100, sys: Number(fields[12]) / 100 };
}

/** One thread of the server: CPU and run-queue wait (ns, schedstat), switches (voluntary, not). */
interface ThreadSample {
  comm: string;
  cpuNs: number;
  waitNs: number;
  vol: number;
  invol: number;
  /** Page faults: minor, and major (the page read from disk: the thread blocked). */
  minflt: number;
  majflt: number;
}

/** DHCP_BENCH_PERF started on the server; the function returned stops it and waits for its file. */
function perfOn(): () => Promise<void> {
  if (!PERF || !current?.pid) return async () => {};
  const p = spawn('perf', PERF.map((a) => a.replaceAll('{pid}', String(current!.pid))), { stdio: 'ignore' });
  execFileSync('sleep', ['0.5']);
  return async () => {
    p.kill('SIGINT');
    await new Promise((r) => p.once('exit', r));
  };
}

/** Every thread of the server process now, by thread id. */
function threadSamples(): Map<string, ThreadSample> {
  const out = new Map<string, ThreadSample>();
  const pid = current?.pid;
  if (!pid) return out;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const base = `/proc/${pid}/task/${tid}`;
      const [cpuNs, waitNs] = readFileSync(`${base}/schedstat`, 'utf8').split(' ').map(Number);
      const status = readFileSync(`${base}/status`, 'utf8');
      const num = (re: RegExp) => Number(re.exec(status)?.[1] ?? NaN);
      const stat = readFileSync(`${base}/stat`, 'utf8').split(') ')[1]!.split(' ');
      out.set(tid, {
        comm: readFileSync(`${base}/comm`, 'utf8').trim(),
        cpuNs: cpuNs!,
        waitNs: waitNs!,
        vol: num(/\nvoluntary_ctxt_switches:\s+(\d+)/),
        invol: num(/nonvoluntary_ctxt_switches:\s+(\d+)/),
        minflt: Number(stat[7]),
        majflt: Number(stat[9]),
      });
    } catch {
      // A thread that ended meanwhile.
    }
  }
  return out;
}

/** Per thread that ran between two samples: µs of CPU and of run-queue wait per DORA, switches per DORA. */
function printThreads(before: Map<string, ThreadSample>, after: Map<string, ThreadSample>, doras: number): void {
  const per = (x: number) => (x / doras).toFixed(x / doras < 10 ? 2 : 0);
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { comm: a.comm, cpuNs: 0, waitNs: 0, vol: 0, invol: 0, minflt: 0, majflt: 0 };
    const cpu = a.cpuNs - b.cpuNs;
    if (cpu < 1e6) continue;
    console.log(`     ${a.comm.padEnd(16)} ${tid.padStart(7)}: CPU ${per(cpu / 1000)} µs/DORA, waited for a CPU ${per((a.waitNs - b.waitNs) / 1000)} µs/DORA (${((a.waitNs - b.waitNs) / 1e6).toFixed(0)} ms), switches ${per(a.vol - b.vol)} voluntary + ${per(a.invol - b.invol)} preempted per DORA, page faults ${a.minflt - b.minflt} minor, ${a.majflt - b.majflt} major`);
  }
}

/** provisiond's event-loop stalls over the step (DHCP_STALL_PROBE of the fixture), split by cause. */
async function printStalls(server: Server): Promise<void> {
  const all = await server.stats?.();
  if (all?.batches) console.log(`     registry commits: ${JSON.stringify(all.batches)}`);
  if (all) {
    const { received, offers, acks, naks, ignored, exhausted, uncommitted, errors } = all;
    console.log(`     dhcp counters: ${JSON.stringify({ received, offers, acks, naks, ignored, exhausted, uncommitted, errors })}`);
  }
  const st = all?.stalls as { count: number; ms: number; cpu: number; gc: number; runQueue: number; asleep: number; worst: number[][] } | undefined;
  if (!st) return;
  console.log(`     loop stalls over 3 ms: ${st.count}, ${st.ms} ms in all: on a CPU ${st.cpu} (GC ${st.gc}), waiting for a CPU ${st.runQueue}, asleep or blocked ${st.asleep}`);
  console.log(`     longest [gap, cpu, gc, run queue, asleep] ms: ${st.worst.map((w) => `[${w.join(', ')}]`).join(' ')}`);
}

/**
 * The rate ladder: the fastest step without drops (0.1 % tolerance), or null. A step that passes
 * at a lower rate than an earlier one (perfdhcp starved on a busy machine) does not lower it.
 *
 * Every step starts the server again on the same state (`prepare`: no leases, or the preloaded
 * ~10,000) and warms it up: each step's clients are new machines, and a /16 pool holds ~65,000, so
 * on one server the ladder's own leases would exhaust the pool near 4,000/s and count as drops.
 * The ladder's steps are ~40 % apart, too coarse to compare two servers near the machine's limit:
 * between the last step passed and the first failed, REFINE more rates are tried by bisection.
 */
async function ladder(server: Server, prepare: () => void, count: boolean): Promise<Run | null> {
  let best: Run | null = null;
  let passed = 0;
  let failed = 0;
  const step = async (rate: number): Promise<boolean> => {
    prepare();
    const stop = await server.start();
    perfdhcp(C, 200, 2); // warm-up (provisiond's JIT), the same for every server
    const c0 = cpuSeconds();
    const u0 = udpNow();
    const r = perfdhcp(C, rate, STEP);
    const c1 = cpuSeconds();
    const udp = r.drops > 0 ? udpDrops(u0) : '';
    await stop();
    if (count) {
      tally.dora += Math.max(0, r.sent - r.drops);
      tally.cpu += c1.total - c0.total;
      tally.sys += c1.sys - c0.sys;
    }
    const ok = r.sent > 0 && r.drops <= r.sent * DROP_TOLERANCE;
    console.log(`   ${rate}/s asked: ${r.rate.toFixed(0)} DORA/s, ${r.drops} drops of ${r.sent}, ${r.latencyMs.toFixed(2)} ms${udp ? ` (UDP: ${udp})` : ''}`);
    if (ok && (!best || r.rate > best.rate)) best = r;
    return ok;
  };
  for (const rate of RATES) {
    if (!(await step(rate))) {
      failed = rate;
      break;
    }
    passed = rate;
  }
  for (let i = 0; i < REFINE && passed > 0 && failed > 0; i++) {
    const mid = Math.round((passed + failed) / 2 / 50) * 50;
    if (mid <= passed || mid >= failed) break;
    if (await step(mid)) passed = mid;
    else failed = mid;
  }
  return best;
}

/** FIXED: one perfdhcp step at a fixed rate on a fresh server, its CPU per DORA (and per thread). */
async function fixedStep(server: Server, rate: number, seconds: number): Promise<void> {
  fresh(server.name);
  const stop = await server.start();
  try {
    perfdhcp(C, 200, 2);
    await server.stats?.();
    const perfDone = perfOn();
    const c0 = cpuSeconds();
    const t0 = threadSamples();
    const u0 = udpNow();
    const r = perfdhcp(C, rate, seconds);
    const udp = udpDrops(u0);
    const c1 = cpuSeconds();
    const t1 = threadSamples();
    await perfDone();
    const doras = Math.max(1, r.sent - r.drops);
    console.log(
      `   fixed ${rate}/s for ${seconds} s: ${r.rate.toFixed(0)} DORA/s, ${r.drops} drops of ${r.sent}, ${r.latencyMs.toFixed(2)} ms; ` +
        `CPU ${(((c1.total - c0.total) / doras) * 1e6).toFixed(0)} µs per DORA (${(((c1.sys - c0.sys) / doras) * 1e6).toFixed(0)} in the kernel); load ${loadavg()[0]!.toFixed(2)}`,
    );
    console.log(`     UDP: ${udp}`);
    printThreads(t0, t1, doras);
    await printStalls(server);
  } finally {
    await stop();
  }
}

const measured: Result[] = [];
try {
  for (const server of ONLY.map((name) => servers.find((s) => s.name === name)).filter((s) => s !== undefined)) {
    console.log(`-- ${server.name}`);
    if (FIXED) await fixedStep(server, FIXED[0]!, FIXED[1] ?? 15);
    if (!PHASES.includes('ladder') && !PHASES.includes('latency') && !PHASES.includes('loaded')) continue;
    tally.dora = tally.cpu = tally.sys = 0;
    const best = PHASES.includes('ladder') ? await ladder(server, () => fresh(server.name), true) : null;
    const cpuPerDora = (tally.cpu / tally.dora) * 1e6;
    const sysPerDora = (tally.sys / tally.dora) * 1e6;
    const lat = PHASES.includes('latency') ? await latency(server) : null;
    if (!PHASES.includes('loaded')) {
      measured.push({ name: server.name, best, loaded: null, preloaded: 0, cpuPerDora, sysPerDora, latency: lat });
      continue;
    }
    // A fresh server, about 10,000 leases made and kept, then the same ladder on them.
    fresh(server.name);
    const stop = await server.start();
    perfdhcp(C, 200, 2);
    // Random picks among 10,700 clients, 32,000 exchanges: about 10,000 distinct (at most 90 s).
    perfdhcp(C, Math.max(250, Math.min(Math.round(best?.rate ?? 250), 4000)), PRELOAD_SECONDS, 10_700, 32_000);
    // The preload runs at the server's own best rate: let it finish what is queued (socket buffer,
    // batched writes) before counting and stopping.
    await sleep(3000);
    const preloaded = await server.leases();
    await stop();
    snapshot(server.name);
    console.log(`   ${preloaded} leases made; again:`);
    const loaded = await ladder(server, () => restore(server.name), false);
    current = null;
    measured.push({ name: server.name, best, loaded, preloaded, cpuPerDora, sysPerDora, latency: lat });
  }
} finally {
  await cleanup();
}

const fmt = (r: Run | null) => (r ? `${r.rate.toFixed(0).padStart(6)} DORA/s ${r.latencyMs.toFixed(2).padStart(6)} ms` : '   n/a');
console.log('\nhighest DORA rate without drops (perfdhcp; latency = DISCOVER-OFFER + REQUEST-ACK)');
console.log('server              fresh                        with ~10,000 leases');
for (const r of measured) {
  const lat = r.latency ? `p50 ${r.latency.p50} ms p99 ${r.latency.p99} ms at ${LATENCY_RATE}/s` : '';
  console.log(`${r.name.padEnd(18)}  ${fmt(r.best)}   ${fmt(r.loaded)} (${r.preloaded} leases)   ${r.cpuPerDora.toFixed(0)} us CPU per DORA (${r.sysPerDora.toFixed(0)} in the kernel)   ${lat}`);
}
const ratio = (a: Run | null, b: Run | null) => (a && b && b.rate > 0 ? (a.rate / b.rate).toFixed(2) : 'n/a');
const latRatio = (a: Result, b: Result) => (a.latency?.p99 && b.latency?.p99 ? (a.latency.p99 / b.latency.p99).toFixed(2) : 'n/a');
for (const ours of measured.filter((r) => r.name.startsWith('provisiond'))) {
  for (const peer of measured.filter((r) => !r.name.startsWith('provisiond'))) {
    console.log(
      `${ours.name} / ${peer.name}: ${ratio(ours.best, peer.best)}x best rate, ${ratio(ours.loaded, peer.loaded)}x with 10,000 leases, ` +
        `${(peer.cpuPerDora / ours.cpuPerDora).toFixed(2)}x CPU efficiency, p99 latency ${latRatio(ours, peer)}x theirs`,
    );
  }
}

/** bench/RESULTS.md: one row per measure, one column per server, one ratio column per (ours, peer) pair. */
const pairs = measured.filter((r) => r.name.startsWith('provisiond')).flatMap((o) => measured.filter((r) => !r.name.startsWith('provisiond')).map((p) => [o, p] as const));
const n = (x: number) => Math.round(x).toLocaleString('en');
const cells = (f: (r: Result) => string, ratioOf: (o: Result, p: Result) => string) => [...measured.map(f), ...pairs.map(([o, p]) => ratioOf(o, p))];
const rateRatio = (a: Run | null, b: Run | null) => (a && b && b.rate > 0 ? `**${(a.rate / b.rate).toFixed(2)}x**` : 'n/a');
if (measured.length > 0) {
  results.write({
    name: 'dhcp',
    title:
      `\`bench/dhcp.ts\`: perfdhcp in one namespace against each server in another, same /16 pool. The highest rate step passed ` +
      `without drops (0.1 % tolerance; ${STEP} s steps up the ladder ${RATES.join(', ')}, then ${REFINE} bisection steps), as DORA/s completed, ` +
      `on a fresh server and again once about 10,000 leases exist; every step starts the server again on that state. ` +
      `CPU per DORA over the fresh ladder. Latency: the project's scripted client, DISCOVER-OFFER + REQUEST-ACK at a steady ${LATENCY_RATE} DORA/s. ` +
      `provisiond runs with \`dhcp.durability: fsync\` (provisiond) and \`process\` (provisiond-process); Kea with memfile leases persisted, ` +
      `dnsmasq with \`--no-ping\` and its lease file. Ratios: provisiond / peer for rates, the peer's CPU per DORA / ours, our p99 / the peer's.`,
    columns: [
      { title: 'measure' },
      ...measured.map((r) => ({ title: r.name, align: 'right' as const })),
      ...pairs.map(([o, p]) => ({ title: `${o.name} / ${p.name}`, align: 'right' as const })),
    ],
    rows: [
      ['highest rate, fresh (DORA/s)', ...cells((r) => (r.best ? n(r.best.rate) : 'n/a'), (o, p) => rateRatio(o.best, p.best))],
      ['highest rate, with ~10,000 leases (DORA/s)', ...cells((r) => (r.loaded ? `${n(r.loaded.rate)} (${n(r.preloaded)} leases)` : 'n/a'), (o, p) => rateRatio(o.loaded, p.loaded))],
      ['perfdhcp mean latency at the fresh highest rate', ...cells((r) => (r.best ? `${r.best.latencyMs.toFixed(2)} ms` : 'n/a'), () => '-')],
      ['CPU per DORA (in the kernel)', ...cells((r) => `${n(r.cpuPerDora)} µs (${n(r.sysPerDora)})`, (o, p) => `${(p.cpuPerDora / o.cpuPerDora).toFixed(2)}x`)],
      [
        `p50 / p99 at ${n(LATENCY_RATE)} DORA/s`,
        ...cells((r) => (r.latency ? `${r.latency.p50} / ${r.latency.p99} ms` : 'n/a'), (o, p) => (o.latency?.p99 && p.latency?.p99 ? `p99 ${(o.latency.p99 / p.latency.p99).toFixed(2)}x theirs` : 'n/a')),
      ],
    ],
  });
}
