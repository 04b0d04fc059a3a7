/**
 * pxelinux configuration files for sites that still boot syslinux menus: `pxelinux.cfg/01-<mac>`
 * per node and `pxelinux.cfg/default` for the rest. Perceus wrote these to disk on every change;
 * provisiond renders them from the registry when they are requested, so they are never stale.
 * Pure: the daemon resolves the node and its stage-1 and passes them in.
 */
import type { ResolvedNode } from '../registry/types.js';
import { kernelArgs, type IpxeScriptInput } from './ipxe-script.js';
import { parseMac } from '../util/mac.js';

/** The hardware address a pxelinux.cfg name asks for (`pxelinux.cfg/01-aa-bb-cc-dd-ee-ff`), or null. */
export function pxelinuxConfigMac(path: string): string | null {
  const m = /^pxelinux\.cfg\/01-([0-9a-f]{2}(?:-[0-9a-f]{2}){5,19})$/i.exec(path);
  return m ? parseMac(m[1]!) : null;
}

/** One-line text safe in a pxelinux config (no line breaks). */
function clean(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

function localBoot(comment: string, say: string): string {
  return [`# provisiond: ${clean(comment)}`, 'DEFAULT local', 'PROMPT 0', 'TIMEOUT 1', `SAY provisiond: ${clean(say)}`, 'LABEL local', '  LOCALBOOT 0', ''].join('\n');
}

/** The config of a registered node: boot the stage-1 with its nodeid, or its local disk when disabled or `boot local`. */
export function pxelinuxNodeConfig(node: ResolvedNode, input: IpxeScriptInput): string {
  const who = `${node.name} (${node.nodeid})`;
  if (!node.enabled) return localBoot(`${who} is disabled`, `${who} is disabled: booting the local disk`);
  if (node.boot === 'local') return localBoot(`${who} is set to boot local`, `${who} is set to boot local`);
  return [
    `# provisiond: ${clean(who)} group ${clean(node.group)} vnfs ${clean(node.vnfs) || '-'}`,
    'DEFAULT provisiond',
    'PROMPT 0',
    'TIMEOUT 1',
    'LABEL provisiond',
    `  SAY provisiond: booting ${clean(who)} stage-1 from ${input.base}`,
    `  KERNEL ${input.stage1.kernel}`,
    `  APPEND ${kernelArgs(node, input).replace(/^initrd=\S+/, `initrd=${input.stage1.initrd}`)}`,
    '',
  ].join('\n');
}

/** `pxelinux.cfg/default`: reached only by machines without a per-node file, i.e. not registered. */
export function pxelinuxDefaultConfig(): string {
  return localBoot('machines that are not registered nodes', 'this machine is not a registered node (provisiond node add): booting the local disk');
}
