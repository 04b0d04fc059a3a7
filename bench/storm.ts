/**
 * bench/storm: a boot storm (issue 22). Every simulated node powers on within one second and boots
 * the way a real one does (test/lib/storm/sim.ts: PXE DHCP, TFTP of the loader, iPXE's DHCP and
 * script, the stage-1 kernel and initramfs over HTTP, the stage-1's DHCP, the init nodescript, the
 * reports, getfile of the image, the ready check-in; each with the real client's timeouts and
 * retries) from its own leased address, in a network namespace of its own (test/lib/storm/lab.ts).
 *
 * provisiond serves it as an admin runs it (its DHCP, TFTP and HTTP, the shipped nodescripts run on
 * the master for every node). The peer in the same run: dnsmasq (DHCP + TFTP) and nginx (HTTP)
 * serving the same files, with the init script as a static file (nothing runs per node).
 *
 * `npm run storm -- --nodes 1000` runs one storm against provisiond (an admin's capacity check);
 * `npm run bench storm` runs the figures: STORM_BENCH_NODES (default 1000,3000) against provisiond,
 * the first size against the peer too. Sizes: STORM_BENCH_KERNEL_MIB (8), STORM_BENCH_INITRD_MIB
 * (11.4, the generic stage-1 of docs/initramfs.md), STORM_BENCH_IMAGE_MIB (1.5, the demo image).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { REPO } from '../test/lib/paths.js';
import { tempDir } from '../test/lib/cleanup.js';
import { parsePromText, sumOf } from '../test/lib/prom-text.js';
import { ProcessMeter, processTree, StormLab, type ProcessUsage } from '../test/lib/storm/lab.js';
import { peerMissing, startPeer, startProvisiond } from '../test/lib/storm/servers.js';
import { PHASES, type NodeResult, type StormReport } from '../test/lib/storm/sim.js';
import { BenchResults } from './lib/results.js';

// The daemon runs the compiled dist/ (bin/provisiond.js): bring it up to date with src/ first.
const build = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
if (build.status !== 0) {
  console.error('storm: `npm run build` failed');
  process.exit(1);
}

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const adminRun = arg('nodes') !== undefined;
const results = new BenchResults('storm', { envPrefix: 'STORM_BENCH_' });
const sizes = (arg('nodes') ?? process.env.STORM_BENCH_NODES ?? '1000,3000').split(',').map(Number);
if (sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 50_000)) {
  console.error('storm: --nodes takes a whole number of nodes between 1 and 50,000');
  process.exit(2);
}
const MiB = 1 << 20;
const files = {
  kernel: Math.round(Number(arg('kernel-mib') ?? process.env.STORM_BENCH_KERNEL_MIB ?? 8) * MiB),
  initrd: Math.round(Number(arg('initrd-mib') ?? process.env.STORM_BENCH_INITRD_MIB ?? 11.4) * MiB),
  image: Math.round(Number(arg('image-mib') ?? process.env.STORM_BENCH_IMAGE_MIB ?? 1.5) * MiB),
};
/** Extra keys of provisiond's `http` config (e.g. `maxTransfers: 0` for a storm without pacing). */
const HTTP_CONFIG = process.env.STORM_BENCH_HTTP ?? '';
if (HTTP_CONFIG) results.nonDefault(`STORM_BENCH_HTTP=${JSON.stringify(HTTP_CONFIG)}`);
const peerWanted = !adminRun && process.env.STORM_BENCH_PEER !== '0';
const missing = peerWanted ? peerMissing() : null;
if (missing) results.nonDefault(`peer not run: ${missing}`);

type Server = 'provisiond' | 'provisiond-unpaced' | 'peer';
const LABEL: Record<Server, string> = { provisiond: 'provisiond', 'provisiond-unpaced': 'provisiond, `http.maxTransfers: 0`', peer: 'dnsmasq + nginx' };

interface Run {
  server: Server;
  nodes: number;
  report: StormReport;
  lost: NodeResult[];
  usage: ProcessUsage;
  pacing?: string;
}

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const runs: Run[] = [];
let macBlock = 0;

async function storm(server: Server, nodes: number): Promise<Run> {
  const dir = tempDir('pvd-bench-storm-');
  const lab = StormLab.create(nodes, dir);
  try {
    console.log(`storm: ${nodes} nodes against ${LABEL[server]}: preparing`);
    const p = await startProvisiond(lab, dir, files, { http: server === 'provisiond-unpaced' ? 'maxTransfers: 0' : HTTP_CONFIG });
    let pids: () => number[];
    let stop: () => Promise<unknown>;
    if (server === 'peer') {
      await p.daemon.stop();
      const peer = await startPeer(lab, dir, p.statedir);
      pids = peer.pids;
      stop = async () => peer.stop();
    } else {
      pids = () => processTree(p.daemon.child.pid!);
      stop = () => p.daemon.stop();
    }
    const meter = new ProcessMeter(pids);
    const { report, lost } = await lab.simulate(
      { nodes, macPrefix: `52:${(0x60 + macBlock++).toString(16)}:00`, spreadMs: 1000, deadlineMs: Math.max(300_000, nodes * 200), progressMs: 5000 },
      (line) => console.log(`  ${line}`),
    );
    const usage = meter.stop();
    let pacing: string | undefined;
    if (server !== 'peer') {
      const text = await p.metrics().catch(() => '');
      pacing = pacingFrom(text);
      // The whole scrape and the kernel's UDP counters, for whoever digs into a run.
      if (process.env.STORM_BENCH_DUMP) {
        const udp = await lab.lab.run(lab.serverNs, 'nstat', ['-az', 'UdpRcvbufErrors', 'UdpInErrors', 'UdpInDatagrams', 'TcpExtListenDrops', 'TcpExtListenOverflows']).catch(() => '');
        const clientUdp = await lab.lab.run(lab.clientNs, 'nstat', ['-az', 'UdpRcvbufErrors', 'UdpInErrors', 'UdpInDatagrams', 'TcpExtListenDrops']).catch(() => '');
        writeFileSync(`${process.env.STORM_BENCH_DUMP}-${server}-${nodes}.txt`, `server:\n${udp}\nclients:\n${clientUdp}\n${text}`);
      }
    }
    await stop();
    const run = { server, nodes, report, lost, usage, pacing };
    print(run);
    return run;
  } finally {
    lab.destroy();
  }
}

/** What admission control did, from the metrics (provisiond_admission_*, every resource). */
function pacingFrom(metrics: string): string | undefined {
  if (!metrics) return undefined;
  const m = parsePromText(metrics);
  return `${sumOf(m, 'provisiond_admission_waits_total')} requests waited for a slot, ${sumOf(m, 'provisiond_admission_wait_seconds_sum').toFixed(1)} s in all`;
}

function print(r: Run): void {
  const { report } = r;
  console.log(`storm: ${LABEL[r.server]}, ${r.nodes} nodes: ${report.ready} ready, ${report.failed} lost, last ready after ${s(report.wallMs)}`);
  console.log(`  boot p50 ${s(report.boot.p50)}, p99 ${s(report.boot.p99)}; server CPU ${r.usage.cpuSeconds.toFixed(1)} s (${((r.usage.cpuSeconds / (report.wallMs / 1000)) * 50).toFixed(0)}% of 2 cores), peak RSS ${r.usage.peakRssMiB} MiB`);
  for (const p of PHASES) console.log(`  ${p.padEnd(12)} p50 ${s(report.phases[p]!.p50).padStart(7)}  p99 ${s(report.phases[p]!.p99).padStart(7)}  (${report.phases[p]!.n} nodes)`);
  console.log(`  simulator event-loop delay p99 ${report.simulatorLag.p99.toFixed(0)} ms, max ${report.simulatorLag.max.toFixed(0)} ms`);
  console.log(`  retransmits: DHCP ${report.retransmits.dhcp}, TFTP ${report.retransmits.tftp}; HTTP retries ${report.retransmits.httpRetries}; ${(report.bytes / 1e9).toFixed(1)} GB served`);
  if (r.pacing) console.log(`  pacing: ${r.pacing}`);
  for (const [why, n] of Object.entries(report.retries)) console.log(`  retried: ${n} x ${why}`);
  for (const [phase, reasons] of Object.entries(report.failures)) for (const [why, n] of Object.entries(reasons)) console.log(`  LOST in ${phase}: ${n} x ${why}`);
}

for (const n of sizes) runs.push(await storm('provisiond', n));
// What the pacing costs (or saves): the first size again without it.
if (!adminRun && !HTTP_CONFIG) runs.push(await storm('provisiond-unpaced', sizes[0]!));
if (peerWanted && !missing) runs.push(await storm('peer', sizes[0]!));
if (adminRun) process.exit(runs.every((r) => r.report.failed === 0) ? 0 : 1);

const ours = runs.find((r) => r.server === 'provisiond' && r.nodes === sizes[0]);
const peer = runs.find((r) => r.server === 'peer');
const phaseCell = (r: Run) => {
  const worst = [...PHASES].sort((a, b) => r.report.phases[b]!.p50 - r.report.phases[a]!.p50).slice(0, 2);
  return worst.map((p) => `${p} ${s(r.report.phases[p]!.p50)}`).join(', ');
};
const lostCell = (r: Run) =>
  r.report.failed === 0
    ? '0'
    : `**${r.report.failed}** (${Object.entries(r.report.failures)
        .map(([p, x]) => `${p}: ${Object.entries(x).map(([w, n]) => `${n} ${w}`).join('; ')}`)
        .join('; ')})`;
results.write({
  name: 'storm',
  title:
    `\`bench/storm.ts\`: N simulated nodes powered on within 1 s, each booting as a real node does (PXE DHCP, TFTP loader, iPXE DHCP + script, ` +
    `stage-1 kernel ${(files.kernel / MiB).toFixed(1)} MiB + initramfs ${(files.initrd / MiB).toFixed(1)} MiB over HTTP, stage-1 DHCP, init nodescript, reports, ` +
    `getfile of a ${(files.image / MiB).toFixed(1)} MiB image, ready check-in; real clients' timeouts and retries) from its own leased address. ` +
    'provisiond with its shipped nodescripts run per node; the peer: dnsmasq (DHCP + TFTP) and nginx (HTTP, a static init script) in the same run.',
  columns: [
    { title: 'server' },
    { title: 'nodes', align: 'right' },
    { title: 'all ready after', align: 'right' },
    { title: 'lost' },
    { title: 'boot p50 / p99', align: 'right' },
    { title: 'slowest phases (p50)' },
    { title: 'server CPU, peak RSS', align: 'right' },
  ],
  rows: runs.map((r) => [
    LABEL[r.server],
    r.nodes.toLocaleString('en'),
    r.report.failed === 0 ? s(r.report.wallMs) : `(${s(r.report.wallMs)})`,
    lostCell(r),
    `${s(r.report.boot.p50)} / ${s(r.report.boot.p99)}`,
    phaseCell(r),
    `${r.usage.cpuSeconds.toFixed(0)} s, ${r.usage.peakRssMiB} MiB`,
  ]),
  notes: [
    ...(ours && peer
      ? [`Ratio at ${ours.nodes.toLocaleString('en')} nodes (peer's time / ours; > 1: provisiond is quicker): **${(peer.report.wallMs / ours.report.wallMs).toFixed(2)}x**; lost: provisiond ${ours.report.failed}, peer ${peer.report.failed}.`]
      : []),
    ...(() => {
      const paced = runs.find((r) => r.server === 'provisiond' && r.nodes === sizes[0]);
      const unpaced = runs.find((r) => r.server === 'provisiond-unpaced');
      return paced && unpaced
        ? [
            `What the pacing costs: at ${paced.nodes.toLocaleString('en')} nodes all ready after ${s(paced.report.wallMs)} with it, ${s(unpaced.report.wallMs)} without; ` +
              `the master's peak memory ${paced.usage.peakRssMiB} MiB with it, ${unpaced.usage.peakRssMiB} MiB without (transfers past the 64 sendfile threads are read into Node).`,
          ]
        : [];
    })(),
    ...(peer
      ? ['The peer does less per node: its init script is a static file (provisiond runs the shipped nodescripts on the master for every node), and it keeps no registry, timeline or node credentials.']
      : []),
    ...runs.filter((r) => r.pacing).map((r) => `${LABEL[r.server]}, ${r.nodes.toLocaleString('en')} nodes: ${r.pacing}; DHCP resends ${r.report.retransmits.dhcp}, stage-1/getfile retries ${r.report.retransmits.httpRetries}, the simulator's event-loop delay p99 ${r.report.simulatorLag.p99.toFixed(0)} ms.`),
    ...runs.map(
      (r) =>
        `${LABEL[r.server]}, ${r.nodes.toLocaleString('en')} nodes, per phase p50/p99: ` +
        PHASES.map((p) => `${p} ${s(r.report.phases[p]!.p50)}/${s(r.report.phases[p]!.p99)}`).join(', ') +
        `; retransmits DHCP ${r.report.retransmits.dhcp}, TFTP ${r.report.retransmits.tftp}, HTTP retries ${r.report.retransmits.httpRetries}.`,
    ),
    ...(() => {
      const o1 = runs.find((r) => r.server === 'provisiond' && r.nodes === 1000);
      const o3 = runs.find((r) => r.server === 'provisiond' && r.nodes === 3000);
      const goals: string[] = [];
      if (o1) goals.push(`1,000 nodes all ready with none lost in under 60 s: ${o1.report.failed === 0 && o1.report.wallMs < 60_000 ? 'met' : 'NOT met'} (${s(o1.report.wallMs)}, ${o1.report.failed} lost).`);
      if (o3) goals.push(`3,000 nodes with none lost: ${o3.report.failed === 0 ? 'met' : 'NOT met'} (${s(o3.report.wallMs)}).`);
      return goals.length ? [`Goals: ${goals.join(' ')}`] : [];
    })(),
  ],
});
