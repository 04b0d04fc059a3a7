/**
 * The boot policy in one place, in the shape of pixiecore's Booter: identify a machine (registering
 * it at the start of a boot when `defaults.autoRegister` says so), choose its DHCP boot file, the
 * file behind a TFTP name or an HTTP `/boot/` path, and its iPXE script. The daemon hands the
 * Booter to the servers as their callbacks; servers never see the registry or this module.
 *
 * Auto-registration (one behaviour for every server): as Perceus, an unknown machine is registered
 * at its first contact of a boot (its DHCP DISCOVER, its iPXE script request by MAC, or its `init`
 * nodescript request, whichever comes first) with the next free name of `defaults.nodeName`, in
 * `defaults.group` (VNFS, enabled and debug inherited). The other contacts of an unknown machine (a
 * DHCP REQUEST or renewal, a nodescript of a later state, a TFTP transfer) never register it: a node
 * the admin deleted while it runs is not brought back by its next lease renewal.
 */
import { statePath } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { NamePatternExhaustedError, type NodeRecord, type RegistryStore, type ResolvedNode, type TimelineEvent } from '../registry/types.js';
import { errorMessage } from '../util/errors.js';
import { decideDhcp, type DhcpBootRequest, type DhcpPolicyDecision } from './dhcp-policy.js';
import { ipxeChainScript, ipxeScriptFor } from './ipxe-script.js';
import { pxelinuxConfigMac, pxelinuxDefaultConfig, pxelinuxNodeConfig } from './pxelinux.js';
import { bootFilePath, stage1For } from './stage1.js';

/** A contact of a machine that names itself by hardware address, as a server saw it. */
export type Contact = { nodeid: string; addr: string | null } & (
  | { via: 'dhcp'; /** `discover`, `request`, `inform`... */ message: string }
  | { via: 'http'; ipxe: true }
  | { via: 'http' | 'perceus'; /** The provisionary state of a nodescript request. */ state: string }
);

/** Who a contact is: the registered node, or null with the reason (for the node's console). */
export interface Identity {
  node: NodeRecord | null;
  why: string;
}

/** Whether a contact begins a boot: only those register an unknown machine. */
export function beginsBoot(c: Contact): boolean {
  if ('message' in c) return c.message === 'discover';
  if ('ipxe' in c) return true;
  return c.state === 'init';
}

/** How a contact reads on a timeline: `dhcp discover`, `ipxe script request`, `nodescript init`. */
function describe(c: Contact): string {
  if ('message' in c) return `dhcp ${c.message}`;
  if ('ipxe' in c) return 'ipxe script request';
  return `nodescript ${c.state}`;
}

/** The iPXE script of a request, with what was decided (for the log and the timeline). */
export interface IpxeAnswer {
  script: string;
  /** The node's hardware address; null when the request named none and no node holds its address. */
  nodeid: string | null;
  node: ResolvedNode | null;
  /** `boot vmlinuz`, `boot local`, `refused: disabled`, `refused: not registered`, `chain by mac`. */
  decision: string;
  /** False when the node was refused. */
  ok: boolean;
}

export interface BooterDeps {
  registry: RegistryStore;
  /** The config in force (it changes on reload). */
  config(): Config;
  /** Records one step of a node's boot timeline; never throws. */
  timeline(event: Omit<TimelineEvent, 'time'>): void;
  log: Logger;
  /** `http://MASTER:PORT` as nodes reach the HTTP service (the bound port when http.port is 0). */
  httpBase(): string;
}

export class Booter {
  constructor(private readonly deps: BooterDeps) {}

  /** Node, group and default settings applied. */
  resolve(node: NodeRecord): Promise<ResolvedNode> {
    const d = this.deps.config().defaults;
    return this.deps.registry.resolve(node, { group: d.group, vnfs: d.vnfs, enabled: d.enabled, debug: d.debug });
  }

  /**
   * The node of a contact. An unknown machine is registered when the contact begins a boot and
   * auto-registration is on; otherwise it is recorded as seen (`node list --unknown`), once per
   * boot attempt for DHCP (its DISCOVER, not every packet of the exchange).
   */
  async identify(c: Contact): Promise<Identity> {
    const { registry } = this.deps;
    const known = await registry.getNodeByNodeid(c.nodeid);
    if (known) return { node: known, why: '' };
    if (!beginsBoot(c)) {
      if (c.via !== 'dhcp') await registry.recordUnknown(c.nodeid, c.addr, c.via);
      return { node: null, why: `${c.nodeid} is not a registered node${'state' in c ? ` (asked for state ${c.state})` : ''}` };
    }
    return this.#register(c);
  }

  async #register(c: Contact): Promise<Identity> {
    const { registry, timeline } = this.deps;
    const defaults = this.deps.config().defaults;
    const { nodeid, addr, via } = c;
    if (!defaults.autoRegister) {
      await registry.recordUnknown(nodeid, addr, via);
      return { node: null, why: `${nodeid} is not a registered node and auto-registration is off (provisiond node add NAME ${nodeid})` };
    }
    try {
      // The store logs the registration; the timeline says which contact and from where.
      const { node, created } = await registry.autoRegister(nodeid, defaults);
      if (created) timeline({ nodeid, source: via, stage: 'registered', msg: `auto-registered as ${node.name} at its ${describe(c)}${addr ? ` from ${addr}` : ''}`, ok: true, addr });
      return { node, why: '' };
    } catch (err) {
      if (!(err instanceof NamePatternExhaustedError)) throw err;
      await registry.recordUnknown(nodeid, addr, via);
      const why = `${nodeid} cannot be auto-registered: ${errorMessage(err)}`;
      timeline({ nodeid, source: via, stage: 'registered', msg: why, ok: false, addr });
      return { node: null, why };
    }
  }

  /** The DHCP decision for a request: the node (registered at its DISCOVER), then the firmware rules. */
  async dhcp(req: DhcpBootRequest & { messageType: string; relay: string | null }): Promise<DhcpPolicyDecision> {
    const { node } = await this.identify({ via: 'dhcp', nodeid: req.hwaddr, addr: req.relay, message: req.messageType });
    return decideDhcp(req, node ? await this.resolve(node) : null, this.deps.config());
  }

  /** True when `address` is the fixed address of a node other than `hwaddr`: never offered to anyone else. */
  async addressReserved(address: string, hwaddr: string): Promise<boolean> {
    const node = await this.deps.registry.getNodeByAddress(address);
    return node !== null && node.ipaddr === address && node.nodeid !== hwaddr;
  }

  /**
   * What a TFTP name not found under the TFTP root means, rendered at request time: the fixed-name
   * iPXE script (`tftp.ipxeScript`, chaining to HTTP), `pxelinux.cfg/01-<mac>` from the registry and
   * `pxelinux.cfg/default`, else a packaged loader or a VNFS's own stage-1 file. Null: not found.
   */
  async tftpFile(path: string): Promise<Buffer | { path: string } | null> {
    const config = this.deps.config();
    if (path === config.tftp.ipxeScript) return Buffer.from(ipxeChainScript(this.deps.httpBase()));
    if (path === 'pxelinux.cfg/default') return Buffer.from(pxelinuxDefaultConfig());
    const mac = pxelinuxConfigMac(path);
    if (mac) {
      const record = await this.deps.registry.getNodeByNodeid(mac);
      if (!record) return null; // pxelinux goes on to its next name, and ends at `default`
      const node = await this.resolve(record);
      const stage1 = await stage1For(config.statedir, node.vnfs);
      return Buffer.from(pxelinuxNodeConfig(node, { base: this.deps.httpBase(), stage1 }));
    }
    if (path.startsWith('pxelinux.cfg/')) return null;
    const file = await this.bootFile(path.split('/'));
    return file ? { path: file } : null;
  }

  /** The file behind `/boot/<segments>` (a VNFS's stage-1, the TFTP root, packaged loaders), or null. */
  bootFile(segments: readonly string[]): Promise<string | null> {
    const config = this.deps.config();
    return bootFilePath(config.statedir, statePath(config, config.tftp.root), segments);
  }

  /** The node a transfer was for: the MAC of a pxelinux.cfg name, else the node holding the client's address. */
  async nodeidOfTransfer(file: string, addr: string): Promise<string | null> {
    return pxelinuxConfigMac(file) ?? (await this.deps.registry.getNodeByAddress(addr))?.nodeid ?? null;
  }

  /**
   * The iPXE script of `GET /boot/<MAC>.ipxe` (registering an unknown MAC) or of a fixed name
   * (`nodeid` null: the node holding the client's address, else a chain to the per-MAC script).
   */
  async ipxeScript(nodeid: string | null, addr: string): Promise<IpxeAnswer> {
    const { registry } = this.deps;
    const base = this.deps.httpBase();
    const { node: found, why } = nodeid ? await this.identify({ via: 'http', ipxe: true, nodeid, addr }) : { node: await registry.getNodeByAddress(addr), why: '' };
    if (!found && !nodeid) return { script: ipxeChainScript(base), nodeid: null, node: null, decision: 'chain by mac', ok: true };
    let node: ResolvedNode | null = null;
    if (found) {
      await registry.recordContact(found.nodeid, null, addr);
      node = await this.resolve(found);
    }
    const config = this.deps.config();
    const stage1 = await stage1For(config.statedir, node?.vnfs ?? '');
    const script = ipxeScriptFor(node, { base, stage1, why });
    const decision = !node ? 'refused: not registered' : !node.enabled ? 'refused: disabled' : node.boot === 'local' ? 'boot local' : `boot ${stage1.kernel}`;
    return { script, nodeid: node?.nodeid ?? nodeid, node, decision, ok: Boolean(node?.enabled) };
  }
}
