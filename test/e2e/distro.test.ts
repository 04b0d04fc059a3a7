/**
 * A real distribution booted from provisiond: `vnfs build --distro debian:bookworm` (with Debian's
 * cloud kernel inside, the sensible one for VMs: virtio and a fifth of the modules), then a BIOS VM
 * PXE-boots the default stage-1, which fetches the VNFS, runs the shipped nodescripts and kexecs into
 * the VNFS's own kernel with the image (and the nodescripts' changes) as its initramfs. systemd must
 * reach multi-user.target, the hostname must be the node's name, the address the DHCP one, the ready
 * agent a systemd unit, and `uname -r` the VNFS kernel, not the stage-1's. The power-on to ready time
 * is printed (goal: 45 s alone, BIOS, TCG).
 */
import t from 'tap';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../lib/cleanup.js';
import { gate, missingCommands } from '../lib/gate.js';
import { e2eWhyNot } from './lib/prereqs.js';
import { TestNetwork } from './lib/netns.js';
import { Vm } from './lib/vm.js';
import { Cluster } from './lib/cluster.js';
import { bootFigures, epochMs, formatFigures } from './lib/figures.js';

const READY_INTERVAL = 5;
// TCG on a shared 2-core machine, and a first run on an empty cache bootstraps the VNFS (minutes).
const BUILD_TIMEOUT = 900_000;
const BOOT_TIMEOUT = 420_000;

function distroWhyNot(): string | null {
  const missing = missingCommands(['mmdebstrap', 'kexec']);
  return missing.length ? `${missing.join(', ')} not found: apt-get install mmdebstrap kexec-tools` : null;
}

if (gate(t, e2eWhyNot() ?? distroWhyNot())) {
  const dir = tempDir('pvd-e2e-distro-');
  const net = await TestNetwork.create({ dir });
  const cluster = new Cluster({ net, statedir: join(dir, 'state'), readyInterval: READY_INTERVAL, log: (m) => t.comment(m) });
  const vm = new Vm({ name: 'deb1', firmware: 'bios', mac: '52:54:00:99:01:21', net, dir, memory: 1536 });
  t.teardown(async () => {
    await vm.stop();
    await cluster.stop();
    await net.destroy();
    if (!process.env.PVD_E2E_KEEP) rmSync(dir, { recursive: true, force: true });
    else t.comment(`kept ${dir}`);
  });

  await cluster.prepare();
  t.comment('building the Debian VNFS (provisiond vnfs build debian --distro debian:bookworm --kernel-package linux-image-cloud-amd64)');
  const built = Date.now();
  await cluster.cli(['vnfs', 'build', 'debian', '--distro', 'debian:bookworm', '--kernel-package', 'linux-image-cloud-amd64'], BUILD_TIMEOUT);
  t.comment(`vnfs build --distro took ${((Date.now() - built) / 1000).toFixed(0)} s`);
  const config = readFileSync(join(cluster.statedir, 'vnfs/debian/config'), 'utf8');
  const vnfsKernel = /^kernel: \/boot\/vmlinuz-(\S+)$/m.exec(config)?.[1] ?? '(none)';
  // What the running node says about itself, on its console, at every ready check-in.
  const ready = join(cluster.statedir, 'nodescripts/ready/all/70-e2e-distro');
  mkdirSync(join(ready, '..'), { recursive: true });
  writeFileSync(
    ready,
    [
      '#!/bin/sh',
      'echo "e2e-distro: uname=$(uname -r) host=$(hostname) addr=$(ip -4 -o addr show scope global | awk \'{print $4}\' | cut -d/ -f1) state=$(systemctl is-system-running) agent=$(systemctl is-active provisiond-ready.service) failed=[$(systemctl --failed --no-legend --plain | cut -d\' \' -f1 | tr \'\\n\' \' \')]" > /dev/console',
      // Where the VNFS's own boot went: the kernel's and systemd's shares, and the slowest units.
      'if [ ! -e /run/e2e-analyzed ] && t=$(systemd-analyze time 2>/dev/null | head -n 1) && [ -n "$t" ]; then touch /run/e2e-analyzed; echo "e2e-analyze: $t | $(systemd-analyze blame 2>/dev/null | head -n 6 | tr -s \' \' | tr \'\\n\' \';\')" > /dev/console; fi',
      '',
    ].join('\n'),
  );
  chmodSync(ready, 0o644);
  await cluster.vmGroups(['cluster']);
  await cluster.cli(['node', 'add', vm.mac, vm.name, '--vnfs', 'debian']);
  await cluster.start();

  await vm.start();
  const line = /e2e-distro: uname=(\S*) host=(\S*) addr=(\S*) state=(\S*) agent=(\S*) failed=\[([^\]]*)\]/;
  const outcome = await Promise.allSettled([cluster.waitForNode(vm.mac, (n) => n.state === 'ready', BOOT_TIMEOUT, 'ready'), vm.waitForSerial(/e2e-distro: .* state=running /, BOOT_TIMEOUT)]);

  t.test('the Debian VNFS boots its own kernel by kexec, systemd reaches multi-user.target, the node is ready', async (t) => {
    t.equal(outcome[0].status, 'fulfilled', 'deb1 is ready', outcome[0].status === 'rejected' ? { error: String(outcome[0].reason) } : {});
    const events = await cluster.timelineEvents('deb1').catch(() => []);
    const figures = bootFigures(events, vm.poweredOnAt);
    t.comment(formatFigures('deb1 (bios)', figures));
    const kexecAt = events.find((e) => e.source === 'node' && e.stage === 'kexec');
    t.ok(kexecAt, `timeline: the stage-1 loaded the VNFS kernel for kexec (${kexecAt?.msg})`);
    t.notOk(events.some((e) => e.stage === 'no-kexec'), 'and did not fall back to switch_root');
    const systemd = await (async () => {
      for (let i = 0; i < 60; i++) {
        const e = (await cluster.timelineEvents('deb1').catch(() => [])).find((ev) => ev.source === 'node' && ev.stage === 'systemd');
        if (e) return e;
        await new Promise((r) => setTimeout(r, 2000));
      }
      return undefined;
    })();
    t.equal(systemd?.msg, 'running', 'timeline: systemctl is-system-running says running (multi-user.target reached, no failed unit)');
    const kernelEvent = (await cluster.timelineEvents('deb1').catch(() => [])).find((e) => e.source === 'node' && e.stage === 'kernel');
    t.equal(kernelEvent?.msg, vnfsKernel, `timeline: the VNFS runs on its own kernel ${vnfsKernel}`);
    const node = await cluster.nodeByMac(vm.mac);
    // The first check-ins can come while systemd still starts units: the last line says how it ended.
    const m = [...vm.serial.matchAll(new RegExp(line.source, 'g'))].at(-1);
    t.ok(m, 'the ready script printed what the node says of itself on the console');
    if (m) {
      t.equal(m[1], vnfsKernel, `console: uname -r is the VNFS kernel (${m[1]})`);
      t.not(m[1], /Linux version (\S+)/.exec(vm.serial)?.[1], 'not the stage-1 kernel');
      t.equal(m[2], 'deb1', 'console: the hostname is the node\'s name');
      t.equal(m[3], String(node?.lastaddr ?? node?.ipaddr ?? ''), 'console: the address is the one DHCP gave');
      t.equal(m[4], 'running', 'console: systemctl is-system-running');
      t.equal(m[5], 'active', 'console: the ready agent runs as a systemd unit (provisiond-ready.service)');
      t.equal(m[6].trim(), '', 'console: no failed unit');
    }
    // Each step the node reported, in seconds from power-on: where the boot's time went.
    const steps = events.filter((e) => e.source === 'node' || /^nodescript init\b/.test(e.stage) || (e.source === 'dhcp' && e.stage === 'ack'));
    t.comment(`phases of deb1 (s from power-on): ${steps.map((e) => `${e.stage} ${((epochMs(e.time) - vm.poweredOnAt) / 1000).toFixed(1)}`).join(', ')}`);
    // systemd-analyze answers once the boot has finished; under TCG that can take a few more seconds.
    await vm.waitForSerial(/e2e-analyze: [^\n]*\n/, 30_000).catch(() => {});
    t.comment(`systemd of deb1: ${/e2e-analyze: (.*)/.exec(vm.serial)?.[1] ?? '(not printed)'}`);
    if (figures.ready !== null) t.comment(`power-on to ready: ${figures.ready.toFixed(1)} s (BIOS, TCG, goal 45 s alone; load: ${readFileSync('/proc/loadavg', 'utf8').trim()})`);
    t.comment(`timeline of deb1:\n${await cluster.timeline('deb1').catch(() => '')}`);
  });
}
