/**
 * bench/tftp: provisiond's TFTP server against tftpd-hpa (and atftpd for windowsize), same files,
 * same run, inside a network namespace the bench creates (tftpd-hpa needs a non-loopback IPv4
 * address present). Single 64 MiB transfers at blksize 512/1468/8192/65464 (curl and atftp),
 * windowsize 4/16/64 at 1468 (atftp, vs atftpd), and 16 concurrent 16 MiB transfers at 1468 (curl).
 * The `storm` rows: 200 and 500 PXE-ROM-like clients (TFTP_BENCH_STORM_NODES) fetch a 70 KB or a 200 KB loader
 * at once, from provisiond's native pump, its JS engine and tftpd-hpa.
 * Needs root, curl, atftp, tftpd-hpa; atftpd is taken from its Debian package into .cache/ when
 * not installed (it conflicts with tftpd-hpa). Run: node --import tsx bench/tftp.ts [single] [window] [conc] [storm] [--runs=X] [--engine=js]
 * (`--engine=js`: provisiond as with config `tftp.engine: js`, every transfer in Node, to compare with the native pump).
 * TFTP_BENCH_BLKSIZES (comma list) limits the single-transfer rows to those block sizes.
 * Each row also prints every run and each server's CPU seconds per run (its processes and their children).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { isRoot } from '../test/lib/gate.js';
import { Lab } from '../test/lib/netns.js';
import { sleep } from '../test/lib/sleep.js';
import { BenchResults } from './lib/results.js';

const repo = resolve(import.meta.dirname, '..');
const lab = new Lab('pvd-tftp-bench');
/** The bench's namespace, made once root is checked. */
let NS = '';
const inNs = (cmd: string, args: string[]) => ['ip', ['netns', 'exec', NS, cmd, ...args]] as const;

function atftpdPath(): string | null {
  if (existsSync('/usr/sbin/atftpd')) return '/usr/sbin/atftpd';
  const dir = join(repo, '.cache', 'atftpd');
  const bin = join(dir, 'x', 'usr', 'sbin', 'atftpd');
  if (existsSync(bin)) return bin;
  try {
    mkdirSync(dir, { recursive: true });
    execFileSync('apt-get', ['download', 'atftpd'], { cwd: dir, stdio: 'ignore' });
    const deb = readdirSync(dir).find((f) => f.startsWith('atftpd_') && f.endsWith('.deb'))!;
    execFileSync('dpkg-deb', ['-x', join(dir, deb), join(dir, 'x')]);
    return existsSync(bin) ? bin : null;
  } catch {
    return null;
  }
}

function cleanup() {
  lab.destroy();
  dropGroups();
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

/** Which engine moved provisiond's transfers (serve.ts prints one record per transfer). */
const engines = new Map<string, number>();
/** provisiond's blocks sent again and transfers that did not end ok: a slow row with none is load from elsewhere. */
const trouble = { retransmits: 0, notOk: 0 };

/**
 * CPU accounting per server: each server process goes into a cpuacct cgroup of its own (v1 here) so that
 * the processes it forks later (provisiond's pumps, tftpd-hpa's and atftpd's per-transfer children) are
 * counted with it. Without cgroups the figures are NaN.
 */
const CG = '/sys/fs/cgroup/cpuacct';
const groupsMade: string[] = [];
function account(name: string, pid: number | undefined): string | undefined {
  if (pid === undefined || !existsSync(`${CG}/cgroup.procs`)) return undefined;
  const dir = `${CG}/${NS}-${name}`;
  try {
    mkdirSync(dir);
    groupsMade.push(dir);
    writeFileSync(`${dir}/cgroup.procs`, String(pid));
    return dir;
  } catch {
    return undefined;
  }
}
/** CPU seconds used so far by the processes of a cgroup made by `account`. */
function cpuOf(group: string | undefined): number {
  if (!group) return NaN;
  try {
    return Number(readFileSync(`${group}/cpuacct.usage`, 'utf8')) / 1e9;
  } catch {
    return NaN;
  }
}
function dropGroups(): void {
  for (const dir of groupsMade) {
    try {
      // Processes still alive (being killed) go back to the root group so the directory can go.
      for (const pid of readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n').filter(Boolean)) {
        try {
          writeFileSync(`${CG}/cgroup.procs`, pid);
        } catch {}
      }
    } catch {}
    // A process being killed may linger a moment (a zombie cannot be moved): retry for up to 2 s.
    for (const until = Date.now() + 2000; Date.now() < until; ) {
      try {
        rmdirSync(dir);
        break;
      } catch {}
    }
  }
}

async function startProvisiond(root: string, js = engineJs): Promise<[port: number, pid: number | undefined]> {
  const child = lab.spawn(NS, process.execPath, ['--import', 'tsx', join(repo, 'test/tftp/serve.ts'), JSON.stringify({ root, listen: '127.0.0.1', port: 0, ...(js ? { nativeMinBytes: null } : {}) })], { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      const m = /^listening (\d+)/.exec(line);
      if (m) return resolve([Number(m[1]), child.pid]);
      if (!line.startsWith('{')) return;
      const r = JSON.parse(line) as { engine?: string; outcome: string; retransmits?: number };
      const e = r.engine ?? 'none';
      engines.set(e, (engines.get(e) ?? 0) + 1);
      trouble.retransmits += r.retransmits ?? 0;
      if (r.outcome !== 'ok') trouble.notOk++;
    });
    rl.on('close', () => reject(new Error('provisiond tftp fixture did not start')));
  });
}

function startDaemon(cmd: string, args: string[]): number | undefined {
  return lab.spawn(NS, cmd, args, { stdio: 'ignore' }).pid;
}

/** Seconds a client command takes (throws when it fails). */
function timed(cmd: string, args: string[]): number {
  const [c, a] = inNs(cmd, args);
  const t0 = process.hrtime.bigint();
  execFileSync(c, a, { stdio: 'ignore', timeout: 300_000 });
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function timedParallel(n: number, cmd: string, args: (i: number) => string[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      new Promise<void>((res, rej) => {
        lab.spawn(NS, cmd, args(i), { stdio: 'ignore' }).on('exit', (code) => (code === 0 ? res() : rej(new Error(`${cmd} exit ${code}`))));
      }),
    ),
  );
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const MB = 1e6;

/** One storm, as bench/lib/tftp-storm.ts prints it. */
interface StormRun {
  seconds: number;
  p50: number;
  p99: number;
  failed: number;
  firstError: string;
  retransmits: number;
}
/** Nodes per storm (TFTP_BENCH_STORM_NODES, comma list). */
const STORM_NODES = (process.env.TFTP_BENCH_STORM_NODES ?? '200,500').split(',').map(Number);

/**
 * Arguments: row groups to run (`single`, `window`, `conc`; default all) and `--runs=X`, a factor on the
 * number of runs per row (e.g. 2 for a steadier figure, 0.5 for a quick look).
 */
const argv = process.argv.slice(2);
const runScale = Number(argv.find((a) => a.startsWith('--runs='))?.slice(7) ?? 1);
const engineJs = argv.includes('--engine=js');
const named = argv.filter((a) => !a.startsWith('--'));
const ALL = ['single', 'window', 'conc', 'storm'];
const groups = new Set(named.length ? named : ALL);
const results = new BenchResults('tftp', { envPrefix: 'TFTP_BENCH_' });
if (named.length > 0 && !ALL.every((g) => groups.has(g))) results.nonDefault(`rows ${[...groups].join(', ')} only (default all)`);
if (runScale !== 1) results.nonDefault(`--runs=${runScale} (default 1)`);
if (engineJs) results.nonDefault('--engine=js: every transfer in Node (default: the native pump)');
if (process.env.TFTP_BENCH_BLKSIZES) results.nonDefault(`TFTP_BENCH_BLKSIZES=${process.env.TFTP_BENCH_BLKSIZES} (default 512,1468,8192,65464)`);
const fmt = (mbps: number) => `${mbps.toFixed(0).padStart(6)} MB/s`;

/** One side of a duel: a timed run (seconds) and the server process whose CPU it costs. */
interface Side {
  run: () => number | Promise<number>;
  /** cgroup of the server (see `account`). */
  group: string | undefined;
}

/** Best time of each side, every time of each side, and each side's server CPU seconds per run. */
interface DuelResult {
  best: [number, number];
  times: [number[], number[]];
  cpu: [number, number];
}

/**
 * `runs` runs of each side, the sides alternating (and who goes first alternating too), so that a burst
 * of load from elsewhere on this shared machine hits both rather than one; the best of each counts.
 */
async function duel(runs: number, ours: Side, peer: Side): Promise<DuelResult> {
  const times: [number[], number[]] = [[], []];
  const cpu: [number, number] = [0, 0];
  const one = async (k: 0 | 1) => {
    const side = k === 0 ? ours : peer;
    const c0 = cpuOf(side.group);
    times[k].push(await side.run());
    cpu[k] += cpuOf(side.group) - c0;
    // The runs are synchronous: let the event loop read the fixture's transfer records meanwhile.
    await new Promise((r) => setImmediate(r));
  };
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) {
      await one(0);
      await one(1);
    } else {
      await one(1);
      await one(0);
    }
  }
  return { best: [Math.min(...times[0]), Math.min(...times[1])], times, cpu: [cpu[0] / runs, cpu[1] / runs] };
}

async function main() {
  if (!isRoot) throw new Error('bench/tftp needs root (network namespaces)');
  NS = lab.ns();
  const tmp = mkdtempSync(join(tmpdir(), 'pvd-tftp-bench-'));
  process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
  const root = join(tmp, 'root');
  mkdirSync(root);
  const big = 64 * 1024 * 1024;
  const mid = 16 * 1024 * 1024;
  writeFileSync(join(root, 'big'), randomBytes(big));
  writeFileSync(join(root, 'mid'), randomBytes(mid));
  lab.link({ ns: NS, dev: 'pvd0', addr: '192.0.2.1/24' }, { ns: NS, dev: 'pvd1' });

  const [ours, oursPid] = await startProvisiond(root);
  const HPA = 16969;
  const ATFTPD = 16970;
  const hpaPid = startDaemon('/usr/sbin/in.tftpd', ['--listen', '--foreground', '--address', `127.0.0.1:${HPA}`, '--secure', root]);
  const atftpd = atftpdPath();
  const atftpdPid = atftpd
    ? startDaemon(atftpd, ['--daemon', '--no-fork', '--user', 'root', '--group', 'root', '--port', String(ATFTPD), '--bind-address', '127.0.0.1', '--logfile', '/dev/null', root])
    : undefined;
  await sleep(1000);
  const out = join(tmp, 'out');
  const oursCg = account('provisiond', oursPid);
  const hpaCg = account('tftpd-hpa', hpaPid);
  const atftpdCg = account('atftpd', atftpdPid);

  console.log(`bench/tftp: 64 MiB file, loopback in namespace ${NS}; rows: ${[...groups].join(', ')}; best of runs, the two sides alternating; ratio = provisiond / peer (>= 1.0 is the goal)`);
  console.log(`load average at start: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const rows: Array<[string, number, number, string]> = [];
  /** The table of bench/RESULTS.md. */
  const table: string[][] = [];
  /** Prints a row: best MB/s of each side and the ratio, then every run's MB/s and the server CPU per run. */
  const row = (label: string, bytes: number, d: DuelResult, peer: string) => {
    const [o, p] = d.best.map((t) => (Number.isFinite(t) ? bytes / MB / t : NaN)) as [number, number];
    rows.push([label, o, p, peer]);
    const all = (ts: number[]) => ts.map((t) => (bytes / MB / t).toFixed(0)).join('/');
    table.push([`${label.replace(/\s+/g, ' ')} (${peer})`, o.toFixed(0), p.toFixed(0), `**${(o / p).toFixed(2)}x**`, `${all(d.times[0])} vs ${all(d.times[1])}`, `${d.cpu[0].toFixed(2)} vs ${d.cpu[1].toFixed(2)}`]);
    console.log(
      `${label.padEnd(34)} provisiond ${fmt(o)}   ${peer.padEnd(9)} ${fmt(p)}   ratio ${(o / p).toFixed(2)}x` +
        `   (runs ${all(d.times[0])} vs ${all(d.times[1])}; server CPU s/run ${d.cpu[0].toFixed(2)} vs ${d.cpu[1].toFixed(2)})`,
    );
  };
  const more = (n: number) => Math.max(1, Math.round(n * runScale));
  if (groups.has('single')) {
    for (const b of (process.env.TFTP_BENCH_BLKSIZES ?? '512,1468,8192,65464').split(',').map(Number)) {
      // The short transfers (0.1 to 0.5 s each at 8192 and 65464) get more runs: one burst of load elsewhere is then less likely to decide the row.
      const runs = more(b === 512 ? 2 : b === 1468 ? 3 : 5);
      const curl = (port: number) => () => timed('curl', ['-s', '--tftp-blksize', String(b), '-o', out, `tftp://127.0.0.1:${port}/big`]);
      row(`curl  blksize ${b}`, big, await duel(runs, { run: curl(ours), group: oursCg }, { run: curl(HPA), group: hpaCg }), 'tftpd-hpa');
      const at = (port: number) => () => timed('atftp', ['--option', `blksize ${b}`, '-g', '-r', 'big', '-l', out, '127.0.0.1', String(port)]);
      row(`atftp blksize ${b}`, big, await duel(runs, { run: at(ours), group: oursCg }, { run: at(HPA), group: hpaCg }), 'tftpd-hpa');
    }
  }
  if (groups.has('window')) {
    if (atftpd) {
      for (const w of [4, 16, 64]) {
        const at = (port: number) => timed('timeout', ['60', 'atftp', '--option', 'blksize 1468', '--option', `windowsize ${w}`, '-g', '-r', 'big', '-l', out, '127.0.0.1', String(port)]);
        const peer = () => {
          try {
            return at(ATFTPD);
          } catch {
            console.log(`  (atftpd stalled past 60 s at windowsize ${w})`);
            return Infinity;
          }
        };
        row(`atftp blksize 1468 windowsize ${w}`, big, await duel(more(3), { run: () => at(ours), group: oursCg }, { run: peer, group: atftpdCg }), 'atftpd');
      }
    } else {
      console.log('atftpd not available (apt-get download atftpd failed): windowsize rows skipped');
      results.nonDefault('atftpd not available: windowsize rows not measured');
    }
  }
  if (groups.has('conc')) {
    const conc = (port: number) => () => timedParallel(16, 'curl', (i) => ['-s', '--tftp-blksize', '1468', '-o', `${out}.${i}`, `tftp://127.0.0.1:${port}/mid`]);
    row('16 concurrent x 16 MiB, blksize 1468', 16 * mid, await duel(more(3), { run: conc(ours), group: oursCg }, { run: conc(HPA), group: hpaCg }), 'tftpd-hpa');
  }
  /** The storm table of bench/RESULTS.md: both engines of provisiond and tftpd-hpa, side by side. */
  const stormTable: string[][] = [];
  if (groups.has('storm')) {
    // A boot storm's TFTP: hundreds of PXE ROMs fetch the same loader at once (undionly.kpxe is about
    // 70 KB, ipxe.efi about 200 KB), blksize 1468. Provisiond with its default engine (a file this size
    // goes to the native pump) and with `tftp.engine: js`, against tftpd-hpa.
    const [jsPort, jsPid] = await startProvisiond(root, true);
    const jsCg = account('provisiond-js', jsPid);
    const servers = [
      { name: 'native pump', port: ours, group: oursCg },
      { name: 'js engine', port: jsPort, group: jsCg },
      { name: 'tftpd-hpa', port: HPA, group: hpaCg },
    ];
    const storm = (port: number, file: string, nodes: number, bytes: number) => {
      const [c, a] = inNs(process.execPath, ['--import', 'tsx', join(repo, 'bench/lib/tftp-storm.ts'), JSON.stringify({ server: '127.0.0.1', port, file, nodes, bytes })]);
      return JSON.parse(execFileSync(c, a, { cwd: repo, encoding: 'utf8', timeout: 300_000 })) as StormRun;
    };
    for (const [file, bytes] of [['undionly', 70 * 1024], ['ipxe-efi', 200 * 1024]] as const) {
      writeFileSync(join(root, file), randomBytes(bytes));
      for (const nodes of STORM_NODES) {
        const runs = more(3);
        const best = servers.map(() => null as StormRun | null);
        const cpu = servers.map(() => 0);
        let failed = 0;
        for (let i = 0; i < runs; i++) {
          // Who goes first rotates, so a burst of load from elsewhere does not always hit the same server.
          for (let k = 0; k < servers.length; k++) {
            const j = (k + i) % servers.length;
            const c0 = cpuOf(servers[j]!.group);
            const r = storm(servers[j]!.port, file, nodes, bytes);
            cpu[j]! += (cpuOf(servers[j]!.group) - c0) / runs;
            failed += j === 0 ? r.failed : 0;
            if (r.failed > 0) console.log(`  ${servers[j]!.name}: ${r.failed} of ${nodes} reads failed (${r.firstError})`);
            if (r.failed === 0 && (!best[j] || r.seconds < best[j]!.seconds)) best[j] = r;
          }
          await new Promise((r) => setImmediate(r));
        }
        const label = `${nodes} nodes x ${bytes / 1024} KiB (${file})`;
        const show = (r: StormRun | null) => (r ? `${r.seconds.toFixed(2)} s, p99 ${r.p99.toFixed(0)} ms` : 'failed');
        const ratio = (a: StormRun | null, b: StormRun | null) => (a && b ? `${(b.seconds / a.seconds).toFixed(2)}x` : '-');
        console.log(
          `storm ${label.padEnd(34)} ${servers.map((sv, j) => `${sv.name} ${show(best[j]!)} (CPU ${cpu[j]!.toFixed(2)} s)`).join('   ')}` +
            `   native/hpa ${ratio(best[0]!, best[2]!)}, native/js ${ratio(best[0]!, best[1]!)}`,
        );
        stormTable.push([label, show(best[0]!), show(best[1]!), show(best[2]!), `**${ratio(best[0]!, best[2]!)}**`, ratio(best[0]!, best[1]!), cpu.map((c) => c.toFixed(2)).join(' / ')]);
        if (failed > 0) trouble.notOk += failed;
      }
    }
  }
  const worst = Math.min(...rows.filter((r) => Number.isFinite(r[2])).map((r) => r[1] / r[2]));
  console.log(`worst ratio ${worst.toFixed(2)}x; load average at end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`provisiond transfers by engine: ${[...engines].map(([e, n]) => `${e} ${n}`).join(', ')}; blocks resent ${trouble.retransmits}, not ok ${trouble.notOk}`);
  results.write({
    name: 'tftp',
    title:
      `\`bench/tftp.ts\`: a 64 MiB file over loopback in a network namespace (16 MiB each for the concurrent row); MB/s, best run of each side, ` +
      `the two sides alternating run by run; peers in the same run: tftpd-hpa (curl and atftp clients), atftpd for windowsize. ` +
      `Ratio = provisiond / peer (>= 1.0 is the goal). Server CPU: seconds per run of each server and the processes it forks.`,
    columns: [
      { title: 'transfer (peer)' }, { title: 'provisiond', align: 'right' }, { title: 'peer', align: 'right' }, { title: 'ratio', align: 'right' },
      { title: 'every run, ours vs peer' }, { title: 'server CPU s/run, ours vs peer' },
    ],
    rows: table,
    notes: [
      `${rows.length ? `Worst ratio ${worst.toFixed(2)}x. ` : ''}provisiond's transfers by engine: ${[...engines].map(([e, n]) => `${e} ${n}`).join(', ')}; blocks resent ${trouble.retransmits}, transfers not ok ${trouble.notOk}.`,
      ...(stormTable.length
        ? [
            `**Boot storm** (\`storm\` rows): N PXE-ROM-like clients (blksize 1468, tsize, 1/2/4/8/16 s resends; bench/lib/tftp-storm.ts, one process in the namespace) fetch one loader at once; ` +
              `time until the last read ended and the p99 of one read, best of ${more(3)} storms per server, the servers taking turns. provisiond by default sends a file of 64 KiB or more ` +
              `through the native pump; \`tftp.engine: js\` keeps every transfer in Node. Ratio: the other's time / the native pump's (> 1: the pump is faster).`,
            [
              '| storm | native pump | js engine | tftpd-hpa | ratio vs tftpd-hpa | ratio vs js | server CPU s (pump / js / hpa) |',
              '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
              ...stormTable.map((r) => `| ${r.join(' | ')} |`),
            ].join('\n'),
          ]
        : []),
    ],
  });
}

// Exit explicitly: the servers started in the namespace would keep the event loop alive, and the
// 'exit' handler kills them and deletes the namespace.
main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench/tftp: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
