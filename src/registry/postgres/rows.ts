/** Rows of the PostgreSQL registry to records and back (pure). */
import type { GroupRecord, Lease, NodeRecord, TimelineEvent } from '../types.js';

export const NODE_COLUMNS = 'name, nodeid, grp, vnfs, enabled, debug, ipaddr, description, boot, state, lastcontact, lastaddr, bootvnfs, bootimage, attrs';
export const GROUP_COLUMNS = 'name, vnfs, enabled, debug, boot, description, attrs';
export const LEASE_COLUMNS = 'hwaddr, address, expires, state, hostname, client_id, uuid';

export interface NodeRow {
  name: string;
  nodeid: string;
  grp: string | null;
  vnfs: string | null;
  enabled: boolean | null;
  debug: number | null;
  ipaddr: string | null;
  description: string | null;
  boot: string | null;
  state: string | null;
  lastcontact: number | null;
  lastaddr: string | null;
  bootvnfs: string | null;
  bootimage: string | null;
  attrs: Record<string, string>;
}

export const nodeFromRow = (r: NodeRow): NodeRecord => ({
  name: r.name,
  nodeid: r.nodeid,
  group: r.grp,
  vnfs: r.vnfs,
  enabled: r.enabled,
  debug: r.debug,
  ipaddr: r.ipaddr,
  desc: r.description,
  boot: r.boot as NodeRecord['boot'],
  state: r.state,
  lastcontact: r.lastcontact,
  lastaddr: r.lastaddr,
  bootVnfs: r.bootvnfs,
  bootImage: r.bootimage,
  attrs: r.attrs ?? {},
});

/** Parameters $1..$15 in the order of NODE_COLUMNS. */
export const nodeParams = (n: NodeRecord): unknown[] => [
  n.name,
  n.nodeid,
  n.group,
  n.vnfs,
  n.enabled,
  n.debug,
  n.ipaddr,
  n.desc,
  n.boot,
  n.state,
  n.lastcontact,
  n.lastaddr,
  n.bootVnfs,
  n.bootImage,
  JSON.stringify(n.attrs),
];

export interface GroupRow {
  name: string;
  vnfs: string | null;
  enabled: boolean | null;
  debug: number | null;
  boot: string | null;
  description: string | null;
  attrs: Record<string, string>;
}

export const groupFromRow = (r: GroupRow): GroupRecord => ({
  name: r.name,
  vnfs: r.vnfs,
  enabled: r.enabled,
  debug: r.debug,
  boot: r.boot as GroupRecord['boot'],
  desc: r.description,
  attrs: r.attrs ?? {},
});

export const groupParams = (g: GroupRecord): unknown[] => [g.name, g.vnfs, g.enabled, g.debug, g.boot, g.desc, JSON.stringify(g.attrs)];

export interface LeaseRow {
  hwaddr: string;
  address: string;
  expires: number;
  state: string;
  hostname: string | null;
  client_id: string | null;
  uuid: string | null;
}

export const leaseFromRow = (r: LeaseRow): Lease => ({
  hwaddr: r.hwaddr,
  address: r.address,
  expires: r.expires,
  state: r.state as Lease['state'],
  hostname: r.hostname,
  clientId: r.client_id,
  uuid: r.uuid,
});

export const leaseParams = (l: Lease): unknown[] => [l.hwaddr, l.address, l.expires, l.state, l.hostname ?? null, l.clientId ?? null, l.uuid ?? null];

export interface EventRow {
  time: number;
  nodeid: string;
  source: string;
  stage: string;
  msg: string | null;
  ok: boolean;
  addr: string | null;
}

export const eventFromRow = (r: EventRow): TimelineEvent => ({
  time: r.time,
  nodeid: r.nodeid,
  source: r.source as TimelineEvent['source'],
  stage: r.stage,
  msg: r.msg,
  ok: r.ok,
  addr: r.addr,
});
