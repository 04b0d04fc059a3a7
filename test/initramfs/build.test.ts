/**
 * `provisiond initramfs build`: with Debian's generic kernel (the default: physical NICs) or its
 * cloud kernel (`--flavour cloud`) and busybox-static (fetched into the cache once), the initramfs that GNU cpio lists holds /init, busybox and its applets, /dev/console, and the
 * NIC drivers with their dependencies and a modules.dep/alias for them; the kernel lands beside it.
 * (The end-to-end tests boot it in QEMU: that is where the kernel reads it.)
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectNicModules } from '../../src/vnfs/initramfs.js';

const REPO = new URL('../../', import.meta.url).pathname;

t.test('NIC modules are chosen with their dependencies', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-i7-mods-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'modules.dep'), [
    'kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko: kernel/drivers/ptp/ptp.ko kernel/drivers/pps/pps_core.ko',
    'kernel/drivers/ptp/ptp.ko: kernel/drivers/pps/pps_core.ko',
    'kernel/drivers/pps/pps_core.ko:',
    'kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko',
    'kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko',
    'kernel/net/core/failover.ko:',
    'kernel/sound/core/snd.ko:',
    'kernel/drivers/net/wireguard/wireguard.ko:',
    '',
  ].join('\n'));
  t.same(selectNicModules(dir), [
    'kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko',
    'kernel/drivers/net/net_failover.ko',
    'kernel/drivers/net/virtio_net.ko',
    'kernel/drivers/pps/pps_core.ko',
    'kernel/drivers/ptp/ptp.ko',
    'kernel/net/core/failover.ko',
  ]);
});

t.test('initramfs build writes a kernel and an initramfs GNU cpio reads', { timeout: 600_000 }, async (t) => {
  const statedir = mkdtempSync(join(tmpdir(), 'pvd-i7-build-'));
  t.teardown(() => rmSync(statedir, { recursive: true, force: true }));
  mkdirSync(join(statedir, 'etc'));
  writeFileSync(join(statedir, 'etc/provisiond.yaml'), `statedir: ${statedir}\n`);
  const r = spawnSync(process.execPath, [join(REPO, 'bin/provisiond.js'), '-c', join(statedir, 'etc/provisiond.yaml'), 'initramfs', 'build'], { encoding: 'utf8', timeout: 580_000 });
  t.equal(r.status, 0, `build succeeds: ${r.stderr}`);
  t.match(r.stderr, /kernel: Debian linux-image-amd64 \(generic/, 'the default kernel is Debian\'s generic one');
  const drivers = /^NIC drivers \((\d+)\): (.*)$/m.exec(r.stdout);
  t.ok(drivers, 'it prints the NIC drivers that went in');
  const names2 = new Set(drivers?.[2]!.split(' '));
  for (const d of ['e1000e', 'igb', 'ixgbe', 'i40e', 'ice', 'bnxt_en', 'tg3', 'qede', 'mlx4_en', 'mlx5_core', 'virtio_net']) t.ok(names2.has(d), `the physical NIC driver ${d} is in`);
  t.ok(Number(drivers?.[1]) > 80, `every Ethernet driver of the kernel (${drivers?.[1]})`);
  t.match(r.stdout, /built in \d+\.\d s/, 'and how long the build took');
  const img = join(statedir, 'tftp/initramfs.img');
  const kernel = join(statedir, 'tftp/vmlinuz');
  t.match(r.stdout, /tftp\/vmlinuz +\d+\.\d MiB/, 'prints the kernel and its size');
  t.match(r.stdout, /tftp\/initramfs\.img +\d+\.\d MiB +\(\d+ entries, \d+ modules/, 'prints the initramfs, its size and contents');
  t.ok(statSync(kernel).size > 4 << 20, 'the kernel is there');
  t.match(execFileSync('file', ['-b', kernel], { encoding: 'utf8' }).toString(), /Linux kernel x86 boot executable/);
  const verbose = execFileSync('sh', ['-c', `gzip -dc '${img}' | cpio -tv --quiet`], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const names = execFileSync('sh', ['-c', `gzip -dc '${img}' | cpio -t --quiet`], { encoding: 'utf8', maxBuffer: 64 << 20 }).trim().split('\n');
  for (const f of ['init', 'bin/busybox', 'bin/sh', 'sbin/udhcpc', 'usr/bin/wget', 'sbin/switch_root', 'lib/provisiond/client', 'lib/provisiond/functions', 'lib/provisiond/udhcpc.script', 'newroot', 'proc', 'sys', 'run']) {
    t.ok(names.includes(f), `contains ${f}`);
  }
  // The kernel makes no missing parent folder: each entry's folder must come before it in the archive.
  const orphans = names.filter((n, i) => n.includes('/') && !names.slice(0, i).includes(n.slice(0, n.lastIndexOf('/'))));
  t.same(orphans, [], 'every entry comes after its folder (the kernel creates no parent)');
  t.match(verbose, /^crw------- +1 root +root +5, +1 .* dev\/console$/m, '/dev/console is a character device 5,1');
  t.match(verbose, /^-rwxr-xr-x .* init$/m, '/init is executable');
  const ver = names.find((n) => /^lib\/modules\/[^/]+$/.test(n))!.split('/')[2]!;
  t.ok(names.includes(`lib/modules/${ver}/kernel/drivers/net/virtio_net.ko`), 'virtio_net is in');
  t.ok(names.includes(`lib/modules/${ver}/kernel/drivers/virtio/virtio_pci.ko`), 'virtio_pci (a module, not built in) is in');
  t.ok(names.includes(`lib/modules/${ver}/kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko`), 'e1000e is in');
  t.notOk(names.includes('etc/provisiond/modules'), 'no module loaded by name without --ipoib');
  const ex = mkdtempSync(join(tmpdir(), 'pvd-i7-ex-'));
  t.teardown(() => rmSync(ex, { recursive: true, force: true }));
  execFileSync('sh', ['-c', `gzip -dc '${img}' | cpio -idm --quiet`], { cwd: ex });
  const dep = readFileSync(join(ex, `lib/modules/${ver}/modules.dep`), 'utf8');
  t.match(dep, /^kernel\/drivers\/net\/virtio_net\.ko: .*net_failover\.ko/m, 'modules.dep regenerated with the dependencies');
  const alias = readFileSync(join(ex, `lib/modules/${ver}/modules.alias`), 'utf8');
  t.match(alias, /^alias virtio:d00000001v\* virtio_net$/m, 'modules.alias lets modprobe load the NIC driver by modalias');
  t.match(alias, /^alias pci:v00001AF4d\*sv\*sd\*bc\*sc\*i\* virtio_pci$/m, 'and the bus driver');
  for (const m of dep.split('\n').filter(Boolean)) {
    const [mod, deps] = m.split(':');
    for (const d of [mod!, ...deps!.trim().split(/\s+/).filter(Boolean)]) t.ok(names.includes(`lib/modules/${ver}/${d}`), `${d} is present`);
  }
  // kexec from Debian's kexec-tools, with what it links against: it runs in the unpacked stage-1 alone
  t.match(r.stderr, /kexec .*kexec with \d+ shared libraries \(.*libc\.so\.6/, 'says kexec went in with its libraries');
  t.ok(names.includes('sbin/kexec'), 'contains sbin/kexec');
  t.ok(names.some((n) => /^lib(64|\/x86_64-linux-gnu)\/ld-linux-x86-64\.so\.2$/.test(n)), 'and the dynamic loader');
  if (process.getuid?.() === 0) {
    const v = spawnSync('chroot', [ex, '/sbin/kexec', '--version'], { encoding: 'utf8' });
    t.equal(v.status, 0, `kexec runs inside the unpacked initramfs ${v.stderr}`);
    t.match(v.stdout + v.stderr, /kexec-tools/, 'and is kexec-tools');
  }
  // the client scripts as shipped, byte for byte
  t.same(readFileSync(join(ex, 'lib/provisiond/client')), readFileSync(join(REPO, 'initramfs/lib/provisiond/client')));
  t.equal(spawnSync('busybox', ['sh', '-n', join(ex, 'init')]).status, 0, '/init parses under busybox sh');
});

t.test('--flavour cloud: the small kernel for VMs; --ipoib adds the InfiniBand stack', { timeout: 600_000 }, async (t) => {
  const statedir = mkdtempSync(join(tmpdir(), 'pvd-i7-flavour-'));
  t.teardown(() => rmSync(statedir, { recursive: true, force: true }));
  mkdirSync(join(statedir, 'etc'));
  writeFileSync(join(statedir, 'etc/provisiond.yaml'), `statedir: ${statedir}\n`);
  const build = (...args: string[]) => spawnSync(process.execPath, [join(REPO, 'bin/provisiond.js'), '-c', join(statedir, 'etc/provisiond.yaml'), 'initramfs', 'build', ...args], { encoding: 'utf8', timeout: 580_000 });
  const size = (out: string) => Number(/initramfs\.img +(\d+\.\d) MiB/.exec(out)?.[1]);
  const cloud = build('--flavour', 'cloud', '--out', join(statedir, 'cloud/initramfs.img'));
  t.equal(cloud.status, 0, cloud.stderr);
  t.match(cloud.stderr, /linux-image-cloud-amd64 \(cloud/);
  const cloudDrivers = /^NIC drivers \(\d+\): (.*)$/m.exec(cloud.stdout)?.[1]?.split(' ') ?? [];
  t.ok(cloudDrivers.includes('virtio_net'), 'the cloud kernel has virtio_net');
  t.notOk(cloudDrivers.includes('igb'), 'but not igb: that is why it is not the default');
  const generic = build('--ipoib', '--out', join(statedir, 'generic/initramfs.img'));
  t.equal(generic.status, 0, generic.stderr);
  t.ok(size(generic.stdout) > size(cloud.stdout), `the generic stage-1 is bigger (${size(generic.stdout)} against ${size(cloud.stdout)} MiB)`);
  const names = execFileSync('sh', ['-c', `gzip -dc '${join(statedir, 'generic/initramfs.img')}' | cpio -t --quiet`], { encoding: 'utf8', maxBuffer: 64 << 20 }).trim().split('\n');
  for (const m of ['ulp/ipoib/ib_ipoib.ko', 'hw/mlx5/mlx5_ib.ko', 'hw/mlx4/mlx4_ib.ko', 'core/ib_core.ko']) t.ok(names.some((n) => n.endsWith(`drivers/infiniband/${m}`)), `--ipoib: ${m} is in`);
  const ex = mkdtempSync(join(tmpdir(), 'pvd-i7-ib-'));
  t.teardown(() => rmSync(ex, { recursive: true, force: true }));
  execFileSync('sh', ['-c', `gzip -dc '${join(statedir, 'generic/initramfs.img')}' | cpio -idm --quiet etc/provisiond/modules`], { cwd: ex });
  t.equal(readFileSync(join(ex, 'etc/provisiond/modules'), 'utf8'), 'ib_ipoib\n', 'and /init loads ib_ipoib by name (no device announces it)');
  const bad = build('--flavour', 'tiny');
  t.not(bad.status, 0);
  t.match(bad.stderr, /--flavour tiny: use generic or cloud/);
});
