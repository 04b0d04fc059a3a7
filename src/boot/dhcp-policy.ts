/**
 * The DHCP boot decision: which boot file or URL a machine gets, from its firmware (option 93
 * architecture, option 77 user class, option 60 vendor class) and its registry entry.
 *
 *   BIOS (arch 0)            -> undionly.kpxe over TFTP
 *   UEFI x86 (6, 7, 9)       -> dhcp.efiBootFile (snponly.efi: reuses the firmware's NIC driver)
 *   UEFI ARM64 (11)          -> ipxe-arm64.efi
 *   UEFI HTTP boot (16, 19)  -> http://MASTER:PORT/boot/<loader>, option 60 HTTPClient
 *   iPXE (user class iPXE)   -> http://MASTER:PORT/boot/${mac}.ipxe (iPXE expands ${mac}), 175.176 set
 *
 * Pure: the daemon looks the node up and passes it in.
 */
import type { Config } from '../config/schema.js';
import type { ResolvedNode } from '../registry/types.js';

/** What the policy needs to know of the request. */
export interface DhcpBootRequest {
  hwaddr: string;
  arch: number | null;
  userClasses: readonly string[];
  vendorClass: string | null;
  proxy: boolean;
}

export interface DhcpBootAnswer {
  nextServer: string;
  file: string;
  vendorClass?: string | null;
  ipxeNoProxyWait?: boolean;
}

export type DhcpPolicyDecision =
  | { answer: false; reason: string }
  | { answer: true; address: string | null; hostname: string | null; boot: DhcpBootAnswer | null; why: string };

/** The loader a PXE ROM of architecture `arch` fetches, or null when provisiond has none for it. */
export function loaderForArch(arch: number | null, efiBootFile: string): string | null {
  switch (arch) {
    case null:
    case 0:
      return 'undionly.kpxe';
    case 6:
    case 7:
    case 9:
    case 16:
      return efiBootFile;
    case 11:
    case 19:
      return 'ipxe-arm64.efi';
    default:
      return null;
  }
}

/** The base URL nodes reach the master's HTTP server at. */
export function masterUrl(config: Pick<Config, 'master' | 'http'>): string {
  return `http://${config.master}:${config.http.port}`;
}

export function isIpxe(req: Pick<DhcpBootRequest, 'userClasses'>): boolean {
  return req.userClasses.includes('iPXE');
}

/** Boot information for a machine that is to network-boot, or null for an unknown architecture. */
export function bootFor(req: DhcpBootRequest, config: Pick<Config, 'master' | 'http' | 'dhcp'>): DhcpBootAnswer | null {
  const nextServer = config.master;
  if (isIpxe(req)) {
    // The chain ends in HTTP: the per-node iPXE script, by MAC; iPXE must not wait for ProxyDHCP.
    return { nextServer, file: `${masterUrl(config)}/boot/\${mac}.ipxe`, ipxeNoProxyWait: true };
  }
  const loader = loaderForArch(req.arch, config.dhcp.efiBootFile);
  if (loader === null) return null;
  if (req.arch === 16 || req.arch === 19 || req.vendorClass?.startsWith('HTTPClient')) {
    return { nextServer, file: `${masterUrl(config)}/boot/${loader}`, vendorClass: 'HTTPClient' };
  }
  return { nextServer, file: loader };
}

/**
 * The decision for one request. `node` is the registered node (resolved), or null for a machine
 * the registry does not know (and did not auto-register).
 */
export function decideDhcp(req: DhcpBootRequest, node: ResolvedNode | null, config: Pick<Config, 'master' | 'http' | 'dhcp'>): DhcpPolicyDecision {
  if (!node && config.dhcp.ignoreUnknown) return { answer: false, reason: 'unknown machine (dhcp.ignoreUnknown)' };
  const local = node !== null && (node.boot === 'local' || !node.enabled);
  if (local) {
    const why = node.boot === 'local' ? 'boot local' : 'disabled';
    if (config.dhcp.localBoot === 'ignore') return { answer: false, reason: `node ${node.name} is ${why} (dhcp.localBoot: ignore)` };
    // No boot file: the firmware gives up on the network and goes on to the next boot device (the disk).
    if (req.proxy) return { answer: false, reason: `node ${node.name} is ${why}: no boot information` };
    // iPXE can run a script: its per-node script says why on the console, then exits to the next
    // boot device (disabled) or boots the disk (boot local) — the same outcome, but the admin sees why.
    if (isIpxe(req)) return { answer: true, address: node.ipaddr, hostname: node.name, boot: bootFor(req, config), why: `${why}: the iPXE script says so` };
    return { answer: true, address: node.ipaddr, hostname: node.name, boot: null, why: `${why}: boot from disk` };
  }
  // provisiond's own stage-1 (udhcpc -V provisiond) already runs a kernel: it wants an address, not a
  // loader, and its timeline row should not read as if the node were PXE-booting again.
  if (req.vendorClass?.startsWith('provisiond')) {
    return { answer: true, address: node?.ipaddr ?? null, hostname: node?.name ?? null, boot: null, why: 'provisiond stage-1: address only' };
  }
  const boot = bootFor(req, config);
  return {
    answer: true,
    address: node?.ipaddr ?? null,
    hostname: node?.name ?? null,
    boot,
    why: boot ? `arch ${req.arch ?? 'none'}${isIpxe(req) ? ' ipxe' : ''} -> ${boot.file}` : `no loader for arch ${req.arch}`,
  };
}
