/**
 * `npm run demo`: a virtual cluster on this machine. N QEMU nodes (default 3) PXE-boot from
 * provisiond alone (DHCP, TFTP, HTTP) inside a private network namespace, auto-register, run their
 * nodescripts, download the demo VNFS and check in as `ready`; a live table shows each node's stage.
 * The cluster then keeps running for the admin to explore with the provisiond CLI; Ctrl-C tears it
 * all down (VMs, daemon, namespace).
 *
 *   npm run demo [-- --nodes N] [--firmware bios|uefi|uefi-pxe|uefi-http|mixed] [--statedir DIR]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { missingPrerequisite, E2E_PACKAGES } from './lib/prereqs.js';
import { TestNetwork } from './lib/netns.js';
import { Vm, type Firmware } from './lib/vm.js';
import { Cluster, type ListedNode } from './lib/cluster.js';
import { REPO } from '../lib/paths.js';
import { isRoot } from '../lib/gate.js';
import { sleep } from '../lib/sleep.js';
import { bootFigures, formatFigures } from './lib/figures.js';
import { runCleanup } from '../lib/cleanup.js';

const FIRMWARES: Firmware[] = ['bios', 'uefi', 'uefi-pxe', 'uefi-http'];
const out = process.stdout;

function die(msg: string): never {
  process.stderr.write(`demo: ${msg}\n`);
  process.exit(1);
}

function options() {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', short: 'n', default: '3' },
      firmware: { type: 'string', short: 'f', default: 'bios' },
      statedir: { type: 'string', default: '/var/tmp/provisiond-demo' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    out.write('usage: npm run demo [-- --nodes N] [--firmware bios|uefi|uefi-pxe|uefi-http|mixed] [--statedir DIR]\n');
    process.exit(0);
  }
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 16) die(`--nodes ${values.nodes}: give a number from 1 to 16`);
  const fw = values.firmware!;
  if (fw !== 'mixed' && !FIRMWARES.includes(fw as Firmware)) die(`--firmware ${fw}: one of ${FIRMWARES.join(', ')} or mixed`);
  return { nodes, firmware: fw, statedir: values.statedir! };
}

/** Installs the Debian packages the demo needs, saying so first. */
function ensurePackages(): void {
  const missing = E2E_PACKAGES.filter((p) => {
    try {
      return !execFileSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('install ok installed');
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return;
  out.write(`demo: installing the Debian packages the virtual cluster needs: ${missing.join(' ')}\n`);
  try {
    execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } catch {
    out.write('demo: apt-get install failed; trying once more after apt-get update\n');
    execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit' });
    execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
}

/** The stage a node is in, from its console and the registry. */
function stageOf(vm: Vm, node: ListedNode | undefined): string {
  const s = vm.serial;
  const fail = /provisiond: (.*(?:failed|disabled|not registered).*)/.exec(s);
  if (node?.state === 'ready') return 'ready';
  if (fail) return `FAILED: ${fail[1].trim().slice(0, 60)}`;
  const panic = /Kernel panic - not syncing: (.*)/.exec(s);
  if (panic) return `FAILED: kernel panic: ${panic[1].trim().slice(0, 50)}`;
  if (!vm.running) return 'powered off';
  if (node?.state === 'init') return /switch_root|switching|Run \/sbin\/init/i.test(s) ? 'switching into the VNFS' : 'running init nodescripts';
  if (/Linux version/.test(s)) return 'stage-1 kernel booting';
  if (/provisiond: booting/.test(s)) return 'loading kernel + initramfs';
  if (/iPXE initialising|iPXE 1\.|snponly|Downloading NBP|HTTP Boot/i.test(s)) return 'iPXE / network boot';
  if (/Configuring \(net0|Start PXE|Start HTTP/.test(s)) return 'DHCP';
  return 'firmware';
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

/** A veth pair from this host into the demo's namespace: 10.254.87.1 here, 10.254.87.2 there. */
async function uiLink(net: TestNetwork): Promise<{ inside: string; remove(): void }> {
  const host = `pvdui${process.pid % 100000}`;
  const peer = `pvduin${process.pid % 100000}`;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
  ip('link', 'set', peer, 'netns', net.name);
  ip('addr', 'add', '10.254.87.1/30', 'dev', host);
  ip('link', 'set', host, 'up');
  await net.exec('ip', ['addr', 'add', '10.254.87.2/30', 'dev', peer]);
  await net.exec('ip', ['link', 'set', peer, 'up']);
  return {
    inside: '10.254.87.2',
    remove: () => {
      try {
        ip('link', 'del', host);
      } catch {
        // already gone with the namespace
      }
    },
  };
}

async function main(): Promise<void> {
  // `npx tap test/e2e/` runs every .ts file in the folder: the demo is not a test (it runs until Ctrl-C).
  if (process.env.TAP) {
    out.write('1..0 # SKIP npm run demo is not a test\n');
    return;
  }
  const opts = options();
  if (process.platform !== 'linux') die('the demo runs on Linux only (network namespaces, taps, QEMU)');
  if (!isRoot) {
    die('needs root: it creates a network namespace, a bridge and taps, and runs QEMU VMs and a DHCP server in it. Run: sudo npm run demo');
  }
  ensurePackages();
  const missing = missingPrerequisite();
  if (missing) die(`cannot start: ${missing}`);

  const statedir = opts.statedir;
  // A fresh registry each run; the built kernel, initramfs and VNFS are kept to start faster next time.
  rmSync(join(statedir, 'var'), { recursive: true, force: true });
  rmSync(join(statedir, 'nodescripts'), { recursive: true, force: true });
  const vmdir = join(statedir, 'vms');
  rmSync(vmdir, { recursive: true, force: true });
  mkdirSync(vmdir, { recursive: true });

  let stopping = false;
  const net = await TestNetwork.create({ dir: vmdir });
  // The web UI: the API listens on the namespace's end of a veth pair whose other end is on this
  // host, so a browser here reaches it (plain HTTP on a private /30 that leaves no machine).
  const ui = await uiLink(net);
  const cluster = new Cluster({ net, statedir, readyInterval: 30, extraConfig: `api: { listen: ${ui.inside}, port: 9870, insecure: true }`, log: (m) => out.write(`demo: ${m}\n`) });
  const vms: Vm[] = [];
  const teardown = async (why: string) => {
    if (stopping) return;
    stopping = true;
    out.write(`\ndemo: ${why}: powering off ${vms.length} nodes, stopping provisiond, removing namespace ${net.name}\n`);
    for (const vm of vms) await vm.stop();
    await cluster.stop();
    await net.destroy(); // the namespace's end of the UI's veth goes with it, and so the pair
    ui.remove();
    runCleanup();
    out.write('demo: done\n');
    process.exit(0);
  };
  // Replaces the harness's default handlers: tear down in order, then exit.
  process.removeAllListeners('SIGINT');
  process.removeAllListeners('SIGTERM');
  process.on('SIGINT', () => void teardown('Ctrl-C'));
  process.on('SIGTERM', () => void teardown('SIGTERM'));

  out.write(`demo: network namespace ${net.name}, bridge ${net.bridge}, master ${net.master}; statedir ${statedir}\n`);
  await cluster.prepare();
  await cluster.vmGroups(['cluster']);
  out.write('demo: starting provisiond serve (DHCP on the bridge, TFTP, HTTP)\n');
  await cluster.start();
  const created = await cluster.cli(['token', 'create', `demo-ui-${Date.now()}`, '--role', 'admin', '--expires', '1d']);
  const token = /\S{32,}/.exec(created)?.[0] ?? '(see provisiond token create)';
  const uiLine = `demo: web UI at http://${ui.inside}:9870/ui/ - log in with the admin token ${token}\n`;
  out.write(uiLine);

  for (let i = 0; i < opts.nodes; i++) {
    const firmware = opts.firmware === 'mixed' ? FIRMWARES[i % FIRMWARES.length] : (opts.firmware as Firmware);
    vms.push(new Vm({ name: `vm${i + 1}`, firmware, mac: `52:54:00:de:00:${(i + 1).toString(16).padStart(2, '0')}`, net, dir: vmdir, memory: 512 }));
  }
  out.write(`demo: powering on ${vms.length} nodes (QEMU, TCG); they are unknown to provisiond and register themselves\n\n`);
  await Promise.all(vms.map((v) => v.start()));

  const tty = Boolean(out.isTTY);
  let drawn = 0;
  let nodes: ListedNode[] = [];
  let lastPoll = 0;
  const started = Date.now();
  for (;;) {
    if (Date.now() - lastPoll > 2000) {
      lastPoll = Date.now();
      nodes = await cluster.nodes().catch(() => nodes);
    }
    const rows = [['VM', 'FIRMWARE', 'MAC', 'NODE', 'ADDRESS', 'STAGE', 'TIME']];
    const stages = vms.map((vm) => {
      const node = nodes.find((n) => n.nodeid.toLowerCase() === vm.mac);
      const stage = stageOf(vm, node);
      rows.push([vm.name, vm.firmware, vm.mac, node?.name ?? '-', String(node?.lastaddr ?? '-'), stage, `${((Date.now() - vm.poweredOnAt) / 1000).toFixed(0)} s`]);
      return stage;
    });
    const text = table(rows);
    if (tty) {
      if (drawn) out.write(`\x1b[${drawn}A\x1b[J`);
      out.write(`${text}\n`);
      drawn = rows.length;
    } else if (Date.now() - started > 0) {
      out.write(`${text}\n\n`);
    }
    const done = stages.every((s) => s === 'ready' || s.startsWith('FAILED') || s === 'powered off');
    if (done) break;
    if (Date.now() - started > 600_000) {
      out.write('demo: not every node finished within 10 minutes; the consoles are in ' + vmdir + '\n');
      break;
    }
    await sleep(tty ? 1000 : 5000);
  }

  out.write('\nseconds from power-on (from the boot timeline):\n');
  for (const vm of vms) {
    const node = nodes.find((n) => n.nodeid.toLowerCase() === vm.mac);
    if (!node) continue;
    const events = await cluster.timelineEvents(node.name).catch(() => []);
    out.write(`  ${formatFigures(`${node.name} (${vm.firmware})`, bootFigures(events, vm.poweredOnAt))}\n`);
  }
  const cli = `./bin/provisiond.js --config ${relative(REPO, cluster.configPath).startsWith('..') ? cluster.configPath : relative(REPO, cluster.configPath)}`;
  const first = nodes[0]?.name ?? 'n0000';
  out.write(
    [
      '',
      'The cluster is running. In another terminal, from ' + REPO + ':',
      `  ${cli} node list`,
      `  ${cli} node timeline ${first}`,
      `  ${cli} script render init ${first}`,
      `  ${cli} script render ready ${first}`,
      `  tail -f ${join(vmdir, vms[0].name + '.serial.log')}      # a node's serial console`,
      `  tail -f ${cluster.daemonLog}                            # the daemon's log`,
      `Add a script under ${join(statedir, 'nodescripts/ready/all/')} and the nodes run it at their next check-in (every 30 s).`,
      uiLine.replace(/^demo: /, '').trimEnd(),
      'Press Ctrl-C to power everything off and remove the virtual network.',
      '',
    ].join('\n'),
  );
  // Keep running until Ctrl-C; say so if the daemon dies.
  for (;;) {
    await sleep(2000);
    if (!cluster.daemonRunning && !stopping) {
      out.write(`demo: provisiond serve exited; see ${cluster.daemonLog}\n`);
      await teardown('daemon exited');
    }
  }
}

main().catch((err: Error) => {
  process.stderr.write(`demo: ${err.message}\n`);
  runCleanup();
  process.exit(1);
});
