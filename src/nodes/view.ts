/**
 * A node as the commands present it: resolved (group and default inheritance applied), with the
 * contact age, and secrets masked. Shared by `node list`, `node show`, `node status` and `--json`.
 */
import type { Config } from '../config/schema.js';
import type { NodeRecord, RegistryStore, ResolvedNode } from '../registry/types.js';
import { contactAge, maskedAttrs, timedOut } from './present.js';

/** The fields `node list --json` prints for each node. */
export interface NodeView {
  name: string;
  nodeid: string;
  group: string;
  vnfs: string;
  enabled: boolean;
  debug: number;
  boot: 'pxe' | 'local';
  ipaddr: string | null;
  desc: string | null;
  state: string | null;
  lastaddr: string | null;
  /** Milliseconds since the epoch, or null when never seen. */
  lastcontact: number | null;
  /** `12s ago`, `never`, `timed out (3h ago)`. */
  contact: string;
  timedOut: boolean;
  /** The VNFS and the sha256 of the image of its last boot, as the node reported them (null: not reported). */
  bootVnfs: string | null;
  bootImage: string | null;
  /** The sha256 of its VNFS's image now (null: not built, or not looked up): a reboot changes the node when it differs. */
  currentImage: string | null;
  /** Who the node is allocated to (its own `alloc.owner`), or null. */
  owner: string | null;
  attrs: Record<string, string>;
}

export async function resolveAll(reg: RegistryStore, config: Config, nodes: NodeRecord[]): Promise<ResolvedNode[]> {
  return Promise.all(nodes.map((n) => reg.resolve(n, config.defaults)));
}

/** `images`: the current image sha256 of each VNFS (currentImages()), when the caller looked them up. */
export function nodeView(r: ResolvedNode, config: Config, now = Date.now(), images?: ReadonlyMap<string, string | null>): NodeView {
  return {
    name: r.name,
    nodeid: r.nodeid,
    group: r.group,
    vnfs: r.vnfs,
    enabled: r.enabled,
    debug: r.debug,
    boot: r.boot,
    ipaddr: r.ipaddr,
    desc: r.desc,
    state: r.state,
    lastaddr: r.lastaddr,
    lastcontact: r.lastcontact,
    contact: contactAge(r.lastcontact, config.node.timeout, now),
    timedOut: timedOut(r.lastcontact, config.node.timeout, now),
    bootVnfs: r.bootVnfs,
    bootImage: r.bootImage,
    currentImage: images?.get(r.vnfs) ?? null,
    owner: r.sources['attrs.alloc.owner'] === 'node' ? (r.attrs['alloc.owner'] ?? null) : null,
    attrs: maskedAttrs(r.attrs),
  };
}

/** The address column: where the node was last seen from, else its fixed address. */
export function shownAddress(r: { lastaddr: string | null; ipaddr: string | null }): string {
  return r.lastaddr ?? r.ipaddr ?? '-';
}
