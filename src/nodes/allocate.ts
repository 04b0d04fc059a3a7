/**
 * Node allocation, bare-metal-cloud style (what OpenNebula's deploy and VCL reservations need): a free,
 * enabled node able to be power cycled is given to an owner, atomically (two callers never get one
 * node, whatever process or server asks: RegistryStore.claimNode), and then deployed by the caller.
 * The allocation lives in the node's own attributes, so `node show` and every node answer carry it:
 * `alloc.owner`, `alloc.since` (ISO time) and `alloc.hostname` (the hostname the node takes instead
 * of its name: 49-hostname reads it).
 */
import type { Config } from '../config/schema.js';
import { RegistryConflictError } from '../registry/errors.js';
import type { NodeRecord, RegistryStore } from '../registry/types.js';
import { NodeNotFoundError, UsageError } from '../util/errors.js';
import { compareNames } from '../util/patterns.js';
import { vnfsExists } from '../vnfs/index.js';
import { matchNodes } from './select.js';

export const OWNER = 'alloc.owner';
export const SINCE = 'alloc.since';
export const HOSTNAME = 'alloc.hostname';

export interface AllocationRequest {
  /** Nodes of this (resolved) group... */
  group?: string;
  /** ...or matching these CLI patterns. Exactly one of the two. */
  pattern?: string;
  vnfs: string;
  owner: string;
  hostname?: string;
}

export interface Allocation {
  node: string;
  nodeid: string;
  owner: string;
  since: string;
  hostname: string | null;
  vnfs: string;
}

/** No node was free: says how many there were and why each other was not taken. */
export class NoFreeNodeError extends RegistryConflictError {}

const HOSTNAME_RE = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** The allocation a node carries, or null. */
export function allocationOf(node: NodeRecord): Allocation | null {
  const owner = node.attrs[OWNER];
  if (owner === undefined) return null;
  return { node: node.name, nodeid: node.nodeid, owner, since: node.attrs[SINCE] ?? '', hostname: node.attrs[HOSTNAME] ?? null, vnfs: node.vnfs ?? '' };
}

/** Checks a request: a UsageError naming the field (`owner`, `hostname`...) otherwise. */
export function checkAllocationRequest(req: AllocationRequest, config: Config): void {
  if ((req.group === undefined) === (req.pattern === undefined)) throw new UsageError('allocate: give a group or a pattern (one of the two) to choose the node from');
  if (typeof req.owner !== 'string' || !/^\S{1,200}$/.test(req.owner)) throw new UsageError(`allocate: owner ${JSON.stringify(req.owner)}: expected a name without spaces (at most 200 characters)`);
  if (req.hostname !== undefined && !HOSTNAME_RE.test(req.hostname)) throw new UsageError(`allocate: hostname ${JSON.stringify(req.hostname)}: not a valid host name (RFC 1123)`);
  if (!vnfsExists(config.statedir, req.vnfs)) throw new UsageError(`allocate: no VNFS ${JSON.stringify(req.vnfs)} (vnfs list shows them)`);
}

/**
 * Gives a free node of the group (or pattern) to `owner`: enabled, not allocated, with a power driver
 * (a deploy power cycles it). The node's VNFS is not changed here: the caller deploys it. Committed
 * before it returns. NoFreeNodeError when none is free, saying why.
 */
export async function allocateNode(reg: RegistryStore, config: Config, req: AllocationRequest, now = new Date()): Promise<NodeRecord> {
  checkAllocationRequest(req, config);
  let pool = await reg.listNodes();
  if (req.pattern !== undefined) pool = matchNodes(pool, req.pattern.split(',')).nodes;
  const where = req.group !== undefined ? `group ${req.group}` : `pattern ${req.pattern}`;
  const why = { allocated: 0, disabled: 0, noPower: 0 };
  const candidates: string[] = [];
  for (const n of pool.slice().sort((a, b) => compareNames(a.name, b.name))) {
    const r = await reg.resolve(n, config.defaults);
    if (req.group !== undefined && r.group !== req.group) continue;
    if (n.attrs[OWNER] !== undefined) why.allocated++;
    else if (!r.enabled) why.disabled++;
    else if (!r.attrs['power.driver']) why.noPower++;
    else candidates.push(n.name);
  }
  const claimed =
    candidates.length === 0
      ? null
      : await reg.claimNode(candidates, OWNER, { attrs: { [OWNER]: req.owner, [SINCE]: now.toISOString(), [HOSTNAME]: req.hostname ?? null } });
  if (!claimed) {
    const total = why.allocated + why.disabled + why.noPower + candidates.length;
    if (total === 0) throw new NoFreeNodeError(`no free node: ${where} has no node`);
    const parts = [`${why.allocated + candidates.length} allocated`, why.disabled ? `${why.disabled} disabled` : '', why.noPower ? `${why.noPower} without a power driver` : ''].filter(Boolean);
    throw new NoFreeNodeError(`no free node in ${where}: ${total} node${total === 1 ? '' : 's'}, ${parts.join(', ')}`);
  }
  return claimed;
}

/** Ends a node's allocation; returns what it was. NodeNotFoundError: no such node; RegistryConflictError: not allocated. */
export async function releaseNode(reg: RegistryStore, name: string): Promise<Allocation> {
  const node = await reg.getNode(name);
  if (!node) throw new NodeNotFoundError(`no node ${JSON.stringify(name)}`);
  const was = allocationOf(node);
  if (!was) throw new RegistryConflictError(`node ${node.name} is not allocated`);
  await reg.updateNode(node.name, { attrs: { [OWNER]: null, [SINCE]: null, [HOSTNAME]: null } });
  return was;
}
