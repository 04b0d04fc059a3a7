/** `provisiond initramfs ...`: the stage-1 kernel and initramfs nodes boot before their VNFS. */
import type { Command } from 'commander';
import { buildAction } from './build.js';

export function register(program: Command): void {
  const cmd = program.command('initramfs').description('the stage-1 kernel and initramfs (busybox, /init, the provisiond client, NIC drivers)');
  cmd
    .command('build')
    .description('build <tftp root>/initramfs.img and copy the kernel to <tftp root>/vmlinuz (Debian kernel and busybox-static fetched into the cache when missing)')
    .option('--flavour <flavour>', 'Debian kernel: generic (linux-image-amd64: the drivers of physical NICs) or cloud (linux-image-cloud-amd64: virtio and cloud NICs, smaller, for VMs)', 'generic')
    .option('--kernel <vmlinuz>', 'kernel image to boot instead of Debian\'s (with --modules for its drivers)')
    .option('--modules <dir>', 'its lib/modules/<version> folder (default: the one of that kernel)')
    .option('--no-modules', 'no kernel modules (network drivers built into the kernel)')
    .option('--ipoib', 'also IPoIB: InfiniBand HCA drivers (mlx4, mlx5) and ib_ipoib; the node brings up ib* interfaces as it does eth*')
    .option('--busybox <file>', 'static busybox binary (default: Debian busybox-static from the cache)')
    .option('--kexec <file>', 'kexec binary put in with its shared libraries, to boot a VNFS\'s own kernel (default: Debian kexec-tools\' from the cache)')
    .option('--no-kexec', 'no kexec: every VNFS boots on the stage-1 kernel (switch_root)')
    .option('--out <file>', 'initramfs to write (default: <statedir>/<tftp.root>/initramfs.img; the kernel goes beside it as vmlinuz)')
    .action(buildAction);
}
