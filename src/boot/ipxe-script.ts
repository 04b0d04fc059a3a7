/**
 * The iPXE script a node gets from `GET /boot/<MAC>.ipxe`: the stage-1 kernel and initramfs over
 * HTTP with a kernel command line telling the node's /init how to reach the master and who it is.
 * A disabled or unregistered node gets a script that says why on its console and `exit`s to the
 * next boot device; `boot local` boots the first disk, as Perceus's `node set boot local`.
 * Pure: the daemon resolves the node and the stage-1 files and passes them in.
 */
import type { ResolvedNode } from '../registry/types.js';

/** Where the stage-1 files of a node are, as paths under `/boot/`. */
export interface Stage1 {
  kernel: string;
  initrd: string;
}

export interface IpxeScriptInput {
  /** `http://MASTER:PORT`, the base of every URL and of the `provisiond=` argument. */
  base: string;
  stage1: Stage1;
}

/** Default console of the stage-1 kernel: screen and first serial port (BMC serial-over-LAN, QEMU). */
export const DEFAULT_CONSOLE = 'console=tty0 console=ttyS0,115200n8';

/** Text safe on one iPXE line: no line breaks, no `${...}` expansion. */
function clean(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').replaceAll('$', '');
}

/** The kernel command line of the stage-1 for `node`. */
export function kernelArgs(node: ResolvedNode, { base, stage1 }: IpxeScriptInput): string {
  const initrdName = stage1.initrd.split('/').pop()!;
  const args = [
    // Debian's iPXE under EFI hands the initrd to the kernel by name only: without initrd= it finds none.
    `initrd=${initrdName}`,
    `provisiond=${base}`,
    `provisiond.nodeid=${node.nodeid}`,
    `provisiond.debug=${node.debug}`,
  ];
  if (node.attrs.iface) args.push(`provisiond.iface=${node.attrs.iface}`);
  args.push(node.attrs['kernel.console'] ?? DEFAULT_CONSOLE);
  // Kernel messages below warnings stay off the console unless the node is being debugged: printing
  // them costs seconds on a serial or emulated console (a VM under TCG boots in half the time).
  if (!(node.debug > 0)) args.push('quiet');
  if (node.attrs['kernel.args']) args.push(node.attrs['kernel.args']);
  return clean(args.filter((a) => a.trim() !== '').join(' '));
}

/** The script that boots the stage-1 kernel and initramfs. */
export function ipxeBootScript(node: ResolvedNode, input: IpxeScriptInput): string {
  const { base, stage1 } = input;
  const who = clean(`${node.name} (${node.nodeid})`);
  return [
    '#!ipxe',
    `# provisiond: ${who} group ${clean(node.group)} vnfs ${clean(node.vnfs) || '-'}`,
    `echo provisiond: booting ${who} stage-1 from ${base}`,
    `kernel ${base}/boot/${stage1.kernel} ${kernelArgs(node, input)} || goto failed`,
    `initrd ${base}/boot/${stage1.initrd} || goto failed`,
    'boot || goto failed',
    ':failed',
    `echo provisiond: booting ${who} failed: could not load the stage-1 kernel or initramfs from ${base}`,
    'sleep 10',
    'exit 1',
    '',
  ].join('\n');
}

/** The script of a node that must not boot from the network: the reason on the console, then the next boot device. */
export function ipxeRefuseScript(reason: string): string {
  return ['#!ipxe', `echo provisiond: ${clean(reason)}`, 'echo provisiond: exiting to the next boot device', 'sleep 5', 'exit', ''].join('\n');
}

/** `boot local`: the first local disk, or the next boot device when there is none. */
export function ipxeLocalScript(node: ResolvedNode): string {
  const who = clean(`${node.name} (${node.nodeid})`);
  return ['#!ipxe', `echo provisiond: ${who} is set to boot local: booting the first disk`, 'sanboot --drive 0x80 || exit', ''].join('\n');
}

/** A script for a fixed name (`boot.ipxe`) that chains to the per-node one: iPXE fills in `${mac}`. */
export function ipxeChainScript(base: string): string {
  return ['#!ipxe', `chain ${base}/boot/\${mac}.ipxe || exit`, ''].join('\n');
}

/** The script for a node, or for a machine that is none (`node` null: `why` is said on its console). */
export function ipxeScriptFor(node: ResolvedNode | null, input: IpxeScriptInput & { why: string }): string {
  if (!node) return ipxeRefuseScript(input.why);
  if (!node.enabled) return ipxeRefuseScript(`node ${node.name} (${node.nodeid}) is disabled (provisiond node set enabled 1 ${node.name})`);
  if (node.boot === 'local') return ipxeLocalScript(node);
  return ipxeBootScript(node, input);
}
