/**
 * bench/boot: real PXE boots of QEMU VMs (TCG) on the e2e harness's private network, timed from
 * power-on. For each firmware path, one VM alone:
 *   - to the node's iPXE script running (its `echo provisiond: booting` on the serial console),
 *     with provisiond, and with the peer: dnsmasq (DHCP + TFTP, same loaders, the same script text
 *     served over TFTP) in the same run; ratio = dnsmasq / provisiond (> 1: we are quicker);
 *   - to `ready` with provisiond (DHCP ack, kernel loaded, init script, ready from the timeline);
 * then four BIOS VMs at once to `ready`. Goals on these machines: BIOS <= 10 s, UEFI <= 18 s,
 * four at once <= 25 s. UEFI HTTP boot has no dnsmasq counterpart (dnsmasq serves no HTTP).
 * Then a real distribution: a BIOS VM boots the Debian bookworm systemd VNFS of `vnfs build --distro`
 * (the e2e test's: Debian's cloud kernel inside; the built tree comes from the provisiond cache, keyed
 * by the package list, after the first run) by kexec into its own kernel, to `ready` (goal 45 s).
 * Last, `initramfs build` with the generic kernel (the default) against the cloud kernel
 * (`--flavour cloud`): archive and kernel size, modules, NIC drivers, build time.
 *
 * BOOT_BENCH_RUNS (default 2): boots per path and server; the best is the figure (on a shared
 * machine a slow run says more about the neighbours than about the boot), every run is printed.
 * BOOT_BENCH_PARTS (default `pxe,debian,initramfs`): which of the three parts run.
 */
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { tempDir } from '../test/lib/cleanup.js';
import { missingPrerequisite } from '../test/e2e/lib/prereqs.js';
import { missingCommands } from '../test/lib/gate.js';
import { TestNetwork } from '../test/e2e/lib/netns.js';
import { Vm, type Firmware } from '../test/e2e/lib/vm.js';
import { Cluster } from '../test/e2e/lib/cluster.js';
import { sleep } from '../test/lib/sleep.js';
import { bootFigures, formatFigures } from '../test/e2e/lib/figures.js';
import { BenchResults, formatTable } from './lib/results.js';

const missing = missingPrerequisite() ?? (existsSync('/usr/sbin/dnsmasq') ? null : '/usr/sbin/dnsmasq missing (apt-get install dnsmasq)');
if (missing) {
  console.log(`bench/boot: skipped: ${missing}`);
  process.exit(0);
}

const SCRIPT_SEEN = /provisiond: booting/;
const RUNS = Math.max(1, Number(process.env.BOOT_BENCH_RUNS ?? 2));
const ALL_PARTS = ['pxe', 'debian', 'initramfs'];
const PARTS = new Set((process.env.BOOT_BENCH_PARTS ?? ALL_PARTS.join(',')).split(',').map((p) => p.trim()).filter((p) => ALL_PARTS.includes(p)));
const results = new BenchResults('boot', { envPrefix: 'BOOT_BENCH_' });
if (RUNS !== 2) results.nonDefault(`BOOT_BENCH_RUNS=${RUNS} (default 2)`);
if (PARTS.size !== ALL_PARTS.length) results.nonDefault(`BOOT_BENCH_PARTS=${[...PARTS].join(',')} (default ${ALL_PARTS.join(',')})`);
// The Debian VNFS: as test/e2e/distro.test.ts builds it (the provisiond cache keeps the tree).
const DEBIAN_BUILD = ['vnfs', 'build', 'debian', '--distro', 'debian:bookworm', '--kernel-package', 'linux-image-cloud-amd64'];
const DEBIAN_GOAL = 45;
const debianMissing = missingCommands(['mmdebstrap', 'kexec']);
const load = () => loadavg()[0]!.toFixed(2);
const spread = (xs: number[]) => (xs.length > 1 ? ` [${xs.map((x) => x.toFixed(1)).join(', ')}]` : '');
const dir = tempDir('pvd-bench-boot-');
const net = await TestNetwork.create({ dir });
let vmCount = 0;
const newVm = (firmware: Firmware, memory?: number) => {
  vmCount++;
  return new Vm({ name: `b${vmCount}`, firmware, mac: `52:54:00:99:b0:${vmCount.toString(16).padStart(2, '0')}`, net, dir, memory });
};
const every = (xs: number[]) => `${Math.min(...xs).toFixed(1)} (${xs.map((x) => x.toFixed(1)).join(', ')})`;

/** The peer: dnsmasq hands out addresses and the loaders; iPXE then fetches boot.ipxe over TFTP. Best of RUNS per path. */
async function peerBoots(): Promise<{ best: Record<string, number>; runs: Record<string, number[]> }> {
  const tftp = join(dir, 'dnsmasq-tftp');
  mkdirSync(tftp);
  for (const f of ['undionly.kpxe', 'snponly.efi']) copyFileSync(`/usr/lib/ipxe/${f}`, join(tftp, f));
  writeFileSync(join(tftp, 'boot.ipxe'), '#!ipxe\necho provisiond: booting (dnsmasq peer)\nexit\n');
  const conf = join(dir, 'dnsmasq.conf');
  writeFileSync(
    conf,
    [
      // user=root: the temp dir is 0700, and dnsmasq otherwise drops to `nobody` and cannot read it.
      'port=0', 'user=root', `interface=${net.bridge}`, 'bind-interfaces', 'no-ping',
      `dhcp-range=${net.hostAddress(100)},${net.hostAddress(199)},255.255.255.0,1h`,
      `dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
      'enable-tftp', `tftp-root=${tftp}`,
      'dhcp-userclass=set:ipxe,iPXE', 'dhcp-match=set:efi64,option:client-arch,7',
      'dhcp-boot=tag:ipxe,boot.ipxe', 'dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi', 'dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe', '',
    ].join('\n'),
  );
  const dnsmasq = net.spawn('dnsmasq', ['-k', '-C', conf, `--log-facility=${join(dir, 'dnsmasq.log')}`], { stdio: 'ignore' });
  await sleep(1000);
  const runs: Record<string, number[]> = {};
  for (let r = 0; r < RUNS; r++) {
    for (const fw of ['bios', 'uefi-pxe'] as Firmware[]) {
      const vm = newVm(fw);
      await vm.start();
      (runs[fw] ??= []).push(await vm.waitForSerial(SCRIPT_SEEN, 180_000));
      await vm.stop();
    }
  }
  dnsmasq.kill('SIGKILL');
  await sleep(500);
  const best: Record<string, number> = {};
  for (const [fw, xs] of Object.entries(runs)) best[fw] = Math.min(...xs);
  return { best, runs };
}

/** One VM per firmware path to `ready`, RUNS times, then RUNS waves of four BIOS VMs at once. */
async function ourBoots(cluster: Cluster, lines: string[]): Promise<{ ours: Record<string, { script: number[]; ready: number[] }>; waves: number[] }> {
  const ours: Record<string, { script: number[]; ready: number[] }> = {};
  for (let r = 0; r < RUNS; r++) {
    for (const fw of ['bios', 'uefi-pxe', 'uefi-http'] as Firmware[]) {
      const vm = newVm(fw);
      await vm.start();
      const script = await vm.waitForSerial(SCRIPT_SEEN, 180_000);
      const node = await cluster.waitForNode(vm.mac, (n) => n.state === 'ready', 300_000, 'ready');
      const f = bootFigures(await cluster.timelineEvents(node.name), vm.poweredOnAt);
      await vm.stop();
      const o = (ours[fw] ??= { script: [], ready: [] });
      o.script.push(script);
      o.ready.push(f.ready ?? Infinity);
      lines.push(formatFigures(`${node.name} (${fw})`, f));
    }
  }
  const waves: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const four = [0, 1, 2, 3].map(() => newVm('bios'));
    await Promise.all(four.map((v) => v.start()));
    const ready = await Promise.all(four.map((v) => cluster.waitForNode(v.mac, (n) => n.state === 'ready', 400_000, 'ready')));
    let last = 0;
    for (const [i, node] of ready.entries()) {
      const f = bootFigures(await cluster.timelineEvents(node.name), four[i].poweredOnAt);
      last = Math.max(last, f.ready ?? Infinity);
      lines.push(formatFigures(`${node.name} (4x bios, wave ${r + 1})`, f));
    }
    waves.push(last);
    for (const v of four) await v.stop();
  }
  return { ours, waves };
}

/**
 * The Debian systemd VNFS, one BIOS VM alone to `ready`, RUNS times: seconds from power-on, with the
 * 1-minute load average when each boot ended (the machine is shared).
 */
async function debianBoots(cluster: Cluster, lines: string[]): Promise<Array<{ ready: number; load: string }>> {
  const started = Date.now();
  await cluster.cli(DEBIAN_BUILD, 900_000);
  console.log(`bench/boot: provisiond ${DEBIAN_BUILD.join(' ')}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const out: Array<{ ready: number; load: string }> = [];
  for (let r = 0; r < RUNS; r++) {
    const vm = newVm('bios', 1536);
    await cluster.cli(['node', 'add', vm.mac, `deb${r + 1}`, '--vnfs', 'debian']);
    await vm.start();
    const node = await cluster.waitForNode(vm.mac, (n) => n.state === 'ready', 420_000, 'ready');
    const f = bootFigures(await cluster.timelineEvents(node.name), vm.poweredOnAt);
    await vm.stop();
    out.push({ ready: f.ready ?? Infinity, load: load() });
    lines.push(`${formatFigures(`${node.name} (debian)`, f)}   load ${load()}`);
  }
  return out;
}

interface Stage1 {
  flavour: string;
  kernel: string;
  initramfs: string;
  modules: string;
  drivers: string;
  secs: number[];
}

/** `initramfs build` with each kernel flavour, RUNS times (the kernels come from the provisiond cache). */
async function stage1Builds(cluster: Cluster): Promise<Stage1[]> {
  const out: Stage1[] = [];
  for (const flavour of ['generic', 'cloud']) {
    const s: Stage1 = { flavour, kernel: '-', initramfs: '-', modules: '-', drivers: '-', secs: [] };
    for (let r = 0; r < RUNS; r++) {
      const text = await cluster.cli(['initramfs', 'build', '--flavour', flavour, '--out', join(dir, `stage1-${flavour}`, 'initramfs.img')], 600_000);
      const built = /initramfs\.img\s+([\d.]+ MiB)\s+\(\d+ entries, (\d+) modules, .*built in ([\d.]+) s\)/.exec(text);
      if (!built) throw new Error(`initramfs build --flavour ${flavour}: unexpected output:\n${text}`);
      s.initramfs = built[1]!;
      s.modules = built[2]!;
      s.secs.push(Number(built[3]));
      s.kernel = /vmlinuz\s+([\d.]+ MiB)/.exec(text)?.[1] ?? '-';
      s.drivers = /NIC drivers \((\d+)\)/.exec(text)?.[1] ?? '0';
    }
    out.push(s);
  }
  return out;
}

try {
  const peer = PARTS.has('pxe') ? await peerBoots() : { best: {}, runs: {} as Record<string, number[]> };
  const cluster = new Cluster({ net, statedir: join(dir, 'state'), readyInterval: 30, log: (m) => console.log(`bench/boot: ${m}`) });
  await cluster.prepare();
  await cluster.vmGroups(['cluster']);
  await cluster.start();
  const goals: Record<Firmware, number> = { bios: 10, uefi: 18, 'uefi-pxe': 18, 'uefi-http': 18 };
  const lines: string[] = [];
  const { ours, waves } = PARTS.has('pxe') ? await ourBoots(cluster, lines) : { ours: {}, waves: [] };
  const debian = PARTS.has('debian') && debianMissing.length === 0 ? await debianBoots(cluster, lines) : [];
  const stage1 = PARTS.has('initramfs') ? await stage1Builds(cluster) : [];
  await cluster.stop();

  const rows: string[][] = [];
  const paths: Record<string, string> = { bios: 'BIOS (NIC ROM iPXE)', 'uefi-pxe': 'UEFI firmware PXE -> `snponly.efi`', 'uefi-http': 'UEFI HTTP boot' };
  if (PARTS.has('pxe')) {
    console.log(`\none VM alone, seconds from power-on (best of ${RUNS}; every run in brackets):`);
    console.log('path        script: provisiond  dnsmasq  ratio    to ready (goal)');
    for (const [fw, o] of Object.entries(ours)) {
      const script = Math.min(...o.script);
      const p = peer.best[fw];
      console.log(
        `${fw.padEnd(10)}  ${script.toFixed(1).padStart(17)}  ${p === undefined ? '    -  ' : p.toFixed(1).padStart(7)}  ${p === undefined ? '  -  ' : (p / script).toFixed(2).padStart(5)}x  ${Math.min(...o.ready).toFixed(1).padStart(8)} s (${goals[fw as Firmware]} s)${spread(o.ready)}` +
          `  script${spread(o.script)}${p === undefined ? '' : ` dnsmasq${spread(peer.runs[fw] ?? [])}`}`,
      );
      rows.push([paths[fw] ?? fw, script.toFixed(1), p === undefined ? '-' : p.toFixed(1), p === undefined ? '-' : `**${(p / script).toFixed(1)}x**`, every(o.ready), String(goals[fw as Firmware])]);
    }
    console.log(`\nfour BIOS VMs at once: all four ready ${Math.min(...waves).toFixed(1)} s after power-on (goal 25 s)${spread(waves)}`);
    rows.push(['four BIOS nodes at once (the last one ready)', '-', '-', '-', every(waves), '25']);
  }
  if (debian.length > 0) {
    const xs = debian.map((d) => d.ready);
    console.log(`\nDebian bookworm systemd VNFS (BIOS, kexec): ready ${Math.min(...xs).toFixed(1)} s after power-on (goal ${DEBIAN_GOAL} s)${spread(xs)}, load ${debian.map((d) => d.load).join(', ')}`);
    rows.push(['Debian bookworm VNFS, systemd, its own kernel by kexec (BIOS)', '-', '-', '-', every(xs), String(DEBIAN_GOAL)]);
  }
  console.log('\nper boot:');
  for (const l of lines) console.log(`  ${l}`);
  const stage1Table = formatTable(
    [{ title: 'stage-1 kernel' }, { title: 'kernel', align: 'right' }, { title: 'initramfs', align: 'right' }, { title: 'modules', align: 'right' }, { title: 'NIC drivers', align: 'right' }, { title: 'build (s)' }],
    stage1.map((s) => [s.flavour === 'generic' ? 'generic `linux-image-amd64` (default)' : 'cloud `linux-image-cloud-amd64` (`--flavour cloud`)', s.kernel, s.initramfs, s.modules, s.drivers, every(s.secs)]),
  );
  if (stage1.length > 0) console.log(`\ninitramfs build:\n${stage1Table}`);

  const missed = [
    ...Object.entries(ours).flatMap(([fw, o]) => o.ready.filter((r) => !(r <= goals[fw as Firmware])).map(() => fw)),
    ...waves.filter((w) => !(w <= 25)).map(() => 'four at once'),
    ...debian.filter((d) => !(d.ready <= DEBIAN_GOAL)).map(() => 'debian'),
  ];
  const notes = [missed.length === 0 ? 'Every boot of this run met its goal.' : `**Goal missed** by ${missed.length} boot(s): ${[...new Set(missed)].join(', ')}.`];
  if (debian.length > 0) notes.push(`Debian boots: the 1-minute load average when each ended: ${debian.map((d) => d.load).join(', ')}.`);
  else if (PARTS.has('debian')) notes.push(`No Debian boot: ${debianMissing.join(', ')} not found (apt-get install mmdebstrap kexec-tools).`);
  if (stage1.length > 0) notes.push(`\`initramfs build\` with each kernel flavour (the kernel packages from the provisiond cache; best build time of ${RUNS}, every run in brackets):\n\n${stage1Table}`);
  results.write({
    name: 'boot',
    title:
      `\`bench/boot.ts\`: real PXE boots of QEMU VMs (TCG), seconds from power-on, ${RUNS} runs per path and server. ` +
      `To the node's iPXE script running: the best boot with each server, ratio = dnsmasq / provisiond (> 1: we are quicker); ` +
      `dnsmasq (DHCP + TFTP, the same loaders and script) in the same run. To \`ready\` (provisiond only: dnsmasq serves no HTTP): ` +
      `the best run, every run in brackets. The Debian row boots the bookworm systemd VNFS of \`vnfs build --distro\` ` +
      `(Debian's cloud kernel inside), kexec'd by the stage-1 into its own kernel, 1.5 GiB of memory.`,
    columns: [
      { title: 'path' }, { title: 'iPXE script: provisiond', align: 'right' }, { title: 'dnsmasq', align: 'right' }, { title: 'ratio', align: 'right' },
      { title: 'ready: provisiond' }, { title: 'goal', align: 'right' },
    ],
    rows,
    notes,
  });
} finally {
  await net.destroy();
  rmSync(dir, { recursive: true, force: true });
}
