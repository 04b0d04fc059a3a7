/**
 * The prepared statements of the SQLite backend and the mapping between rows and records.
 * Prepared once per connection: the hot write paths (contacts, leases, events) reuse them.
 */
import type Database from 'better-sqlite3';
import type { DeclinedAddress, GroupRecord, Lease, NodeRecord, TimelineEvent, UnknownNode } from '../types.js';

export interface NodeRow {
  id: number;
  name: string;
  nodeid: string;
  grp: string | null;
  vnfs: string | null;
  enabled: number | null;
  debug: number | null;
  ipaddr: string | null;
  desc: string | null;
  boot: string | null;
  state: string | null;
  lastcontact: number | null;
  lastaddr: string | null;
  bootvnfs: string | null;
  bootimage: string | null;
}

export interface GroupRow {
  name: string;
  vnfs: string | null;
  enabled: number | null;
  debug: number | null;
  boot: string | null;
  desc: string | null;
}

export interface LeaseRow {
  hwaddr: string;
  address: string;
  expires: number;
  state: string;
  hostname: string | null;
  client_id: string | null;
  uuid: string | null;
}

export interface EventRow {
  time: number;
  nodeid: string;
  source: string;
  stage: string;
  msg: string | null;
  ok: number;
  addr: string | null;
  /** The event this row's event followed and absorbed (an offer before its ack), or nulls. */
  prev_time: number | null;
  prev_stage: string | null;
  prev_msg: string | null;
  prev_ok: number | null;
  prev_addr: string | null;
}

const bool = (v: number | null): boolean | null => (v === null ? null : v !== 0);
const int = (v: boolean | null): number | null => (v === null ? null : v ? 1 : 0);

export function nodeFromRow(r: NodeRow, attrs: Record<string, string>): NodeRecord {
  return {
    name: r.name,
    nodeid: r.nodeid,
    group: r.grp,
    vnfs: r.vnfs,
    enabled: bool(r.enabled),
    debug: r.debug,
    ipaddr: r.ipaddr,
    desc: r.desc,
    boot: r.boot as NodeRecord['boot'],
    state: r.state,
    lastcontact: r.lastcontact,
    lastaddr: r.lastaddr,
    bootVnfs: r.bootvnfs ?? null,
    bootImage: r.bootimage ?? null,
    attrs,
  };
}

/** Named parameters of a node row (for INSERT and UPDATE). */
export function nodeParams(n: NodeRecord): Record<string, unknown> {
  return {
    name: n.name,
    nodeid: n.nodeid,
    grp: n.group,
    vnfs: n.vnfs,
    enabled: int(n.enabled),
    debug: n.debug,
    ipaddr: n.ipaddr,
    desc: n.desc,
    boot: n.boot,
    state: n.state,
    lastcontact: n.lastcontact,
    lastaddr: n.lastaddr,
    bootvnfs: n.bootVnfs,
    bootimage: n.bootImage,
  };
}

export function groupFromRow(r: GroupRow, attrs: Record<string, string>): GroupRecord {
  return { name: r.name, vnfs: r.vnfs, enabled: bool(r.enabled), debug: r.debug, boot: r.boot as GroupRecord['boot'], desc: r.desc, attrs };
}

export function groupParams(g: GroupRecord): Record<string, unknown> {
  return { name: g.name, vnfs: g.vnfs, enabled: int(g.enabled), debug: g.debug, boot: g.boot, desc: g.desc };
}

export function leaseFromRow(r: LeaseRow): Lease {
  return {
    hwaddr: r.hwaddr,
    address: r.address,
    expires: r.expires,
    state: r.state as Lease['state'],
    hostname: r.hostname,
    clientId: r.client_id,
    uuid: r.uuid,
  };
}

/** The parameters of `upsertLease`, positional (binding by name costs a lookup per column). */
export function leaseParams(l: Lease): [string, string, number, string, string | null, string | null, string | null] {
  return [l.hwaddr, l.address, l.expires, l.state, l.hostname ?? null, l.clientId ?? null, l.uuid ?? null];
}

export function eventFromRow(r: EventRow): TimelineEvent {
  return { time: r.time, nodeid: r.nodeid, source: r.source as TimelineEvent['source'], stage: r.stage, msg: r.msg, ok: r.ok !== 0, addr: r.addr };
}

/** The events of one row: the absorbed earlier one (same node and source) first, then the row's own. */
export function eventsFromRow(r: EventRow): TimelineEvent[] {
  const own = eventFromRow(r);
  if (r.prev_time === null || r.prev_stage === null) return [own];
  return [{ time: r.prev_time, nodeid: r.nodeid, source: own.source, stage: r.prev_stage, msg: r.prev_msg, ok: r.prev_ok !== 0, addr: r.prev_addr }, own];
}

/**
 * The batched server writes (write-queue.ts), one statement per kind for a whole batch: the rows go in
 * as one JSON array bound to one parameter and SQLite unpacks them with json_each, instead of one
 * call with a dozen bound values per row. The same texts run on the daemon's connection and in the
 * writer thread's (writer.ts). The one `?` is the JSON array; each row an array in the order shown.
 */
export const BATCH_SQL = {
  /** [state, time, addr, nodeid] */
  contacts:
    'UPDATE nodes SET state = j.value ->> 0, lastcontact = j.value ->> 1, lastaddr = j.value ->> 2, bootvnfs = j.value ->> 4, bootimage = j.value ->> 5 ' +
    'FROM json_each(?) AS j WHERE nodes.nodeid = j.value ->> 3',
  /** [hwaddr, address, expires, state, hostname, clientId, uuid] */
  leases:
    'INSERT INTO leases (hwaddr, address, expires, state, hostname, client_id, uuid) ' +
    'SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6 FROM json_each(?) WHERE true ' +
    'ON CONFLICT (hwaddr) DO UPDATE SET address = excluded.address, expires = excluded.expires, state = excluded.state, ' +
    'hostname = excluded.hostname, client_id = excluded.client_id, uuid = excluded.uuid',
  /** hwaddr strings */
  deleteLeases: 'DELETE FROM leases WHERE hwaddr IN (SELECT value FROM json_each(?))',
  /** [address, expires] */
  declined:
    'INSERT INTO declined (address, expires) SELECT value ->> 0, value ->> 1 FROM json_each(?) WHERE true ' +
    'ON CONFLICT (address) DO UPDATE SET expires = excluded.expires',
  /** address strings */
  deleteDeclined: 'DELETE FROM declined WHERE address IN (SELECT value FROM json_each(?))',
  /** [nodeid, addr, via, first, last, count] */
  unknown:
    'INSERT INTO unknown (nodeid, lastaddr, via, firstseen, lastseen, count) ' +
    'SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 FROM json_each(?) WHERE true ' +
    'ON CONFLICT (nodeid) DO UPDATE SET lastaddr = coalesce(excluded.lastaddr, lastaddr), via = excluded.via, ' +
    'lastseen = max(lastseen, excluded.lastseen), count = count + excluded.count',
  /** [time, nodeid, source, stage, msg, ok, addr, prev_time, prev_stage, prev_msg, prev_ok, prev_addr] */
  events:
    'INSERT INTO events (time, nodeid, source, stage, msg, ok, addr, prev_time, prev_stage, prev_msg, prev_ok, prev_addr) ' +
    'SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11 FROM json_each(?)',
  /** Events older than the parameter (ms since the epoch). */
  pruneEvents: 'DELETE FROM events WHERE time < ?',
  /** Keeps the last (parameter) entries of the change log. */
  pruneChanges: 'DELETE FROM changes WHERE id <= (SELECT max(id) FROM changes) - ?',
  /** A writer thread's mark in the change log, before and after its batch (see changes.ts): the parameter is its token. */
  mark: "INSERT INTO changes (kind, key) VALUES ('writer', ?)",
  /** The lease journal's group commits up to the parameter are in the tables (journal.ts). */
  journalApplied: 'UPDATE lease_journal SET applied = max(applied, ?)',
} as const;

export type BatchStatement = keyof typeof BATCH_SQL;

const NODE_COLS = 'name, nodeid, grp, vnfs, enabled, debug, ipaddr, desc, boot, state, lastcontact, lastaddr, bootvnfs, bootimage';
const NODE_VALS = '@name, @nodeid, @grp, @vnfs, @enabled, @debug, @ipaddr, @desc, @boot, @state, @lastcontact, @lastaddr, @bootvnfs, @bootimage';

/** Every statement the store runs, prepared against one connection. */
export function prepare(db: Database.Database) {
  const byName = '(SELECT id FROM nodes WHERE name = ?)';
  return {
    dataVersion: db.prepare('PRAGMA data_version').pluck(),
    allNodes: db.prepare<[], NodeRow>('SELECT * FROM nodes'),
    allNodeAttrs: db.prepare<[], { node_id: number; key: string; value: string }>('SELECT node_id, key, value FROM node_attrs'),
    allGroups: db.prepare<[], GroupRow>('SELECT * FROM groups'),
    allGroupAttrs: db.prepare<[], { grp: string; key: string; value: string }>('SELECT grp, key, value FROM group_attrs'),
    allLeases: db.prepare<[], LeaseRow>('SELECT * FROM leases'),
    allDeclined: db.prepare<[], DeclinedAddress>('SELECT address, expires FROM declined'),
    insertNode: db.prepare(`INSERT INTO nodes (${NODE_COLS}) VALUES (${NODE_VALS})`),
    updateNode: db.prepare(
      'UPDATE nodes SET name = @name, nodeid = @nodeid, grp = @grp, vnfs = @vnfs, enabled = @enabled, debug = @debug, ipaddr = @ipaddr, ' +
        'desc = @desc, boot = @boot WHERE name = @old',
    ),
    setNodeAttr: db.prepare(
      `INSERT INTO node_attrs (node_id, key, value) VALUES (${byName}, ?, ?) ON CONFLICT (node_id, key) DO UPDATE SET value = excluded.value`,
    ),
    deleteNodeAttr: db.prepare(`DELETE FROM node_attrs WHERE node_id = ${byName} AND key = ?`),
    deleteNode: db.prepare('DELETE FROM nodes WHERE name = ?'),
    moveEvents: db.prepare('UPDATE events SET nodeid = ? WHERE nodeid = ?'),
    upsertGroup: db.prepare(
      'INSERT INTO groups (name, vnfs, enabled, debug, boot, desc) VALUES (@name, @vnfs, @enabled, @debug, @boot, @desc) ' +
        'ON CONFLICT (name) DO UPDATE SET vnfs = excluded.vnfs, enabled = excluded.enabled, debug = excluded.debug, boot = excluded.boot, desc = excluded.desc',
    ),
    setGroupAttr: db.prepare('INSERT INTO group_attrs (grp, key, value) VALUES (?, ?, ?) ON CONFLICT (grp, key) DO UPDATE SET value = excluded.value'),
    deleteGroupAttr: db.prepare('DELETE FROM group_attrs WHERE grp = ? AND key = ?'),
    deleteGroup: db.prepare('DELETE FROM groups WHERE name = ?'),
    deleteLease: db.prepare('DELETE FROM leases WHERE hwaddr = ?'),
    moveLease: db.prepare('UPDATE leases SET hwaddr = ? WHERE hwaddr = ?'),
    deleteUnknown: db.prepare('DELETE FROM unknown WHERE nodeid = ?'),
    listUnknown: db.prepare<[], UnknownNode>(
      'SELECT nodeid, lastaddr, via, firstseen, lastseen, count FROM unknown WHERE nodeid NOT IN (SELECT nodeid FROM nodes) ORDER BY lastseen DESC',
    ),
    eventsSince: db.prepare<[string, number, number], EventRow>(
      'SELECT * FROM (SELECT time, nodeid, source, stage, msg, ok, addr, prev_time, prev_stage, prev_msg, prev_ok, prev_addr, id FROM events ' +
        'WHERE nodeid = ? AND time >= ? ORDER BY time DESC, id DESC LIMIT ?) ORDER BY time, id',
    ),
    changesSince: db.prepare<[number], { id: number; kind: string; key: string }>('SELECT id, kind, key FROM changes WHERE id > ? ORDER BY id'),
    changesBetween: db.prepare<[number, number], { id: number; kind: string; key: string }>('SELECT id, kind, key FROM changes WHERE id > ? AND id < ? ORDER BY id'),
    // Two statements: SQLite answers a lone min() or max() from the index, but scans for both at once.
    lastChange: db.prepare<[], number | null>('SELECT max(id) FROM changes').pluck(),
    firstChange: db.prepare<[], number | null>('SELECT min(id) FROM changes').pluck(),
    nodeByNodeid: db.prepare<[string], NodeRow>('SELECT * FROM nodes WHERE nodeid = ?'),
    attrsOfNode: db.prepare<[number], { key: string; value: string }>('SELECT key, value FROM node_attrs WHERE node_id = ?'),
    groupByName: db.prepare<[string], GroupRow>('SELECT * FROM groups WHERE name = ?'),
    attrsOfGroup: db.prepare<[string], { key: string; value: string }>('SELECT key, value FROM group_attrs WHERE grp = ?'),
    leaseByHwaddr: db.prepare<[string], LeaseRow>('SELECT * FROM leases WHERE hwaddr = ?'),
    declinedByAddress: db.prepare<[string], DeclinedAddress>('SELECT address, expires FROM declined WHERE address = ?'),
    /** The writer thread's marks after an id with a token, in order: they come in pairs around its batches. */
    writerMarks: db.prepare<[number, string], number>("SELECT id FROM changes WHERE id > ? AND kind = 'writer' AND key = ? ORDER BY id").pluck(),
    batch: Object.fromEntries(Object.entries(BATCH_SQL).map(([k, sql]) => [k, db.prepare(sql)])) as Record<BatchStatement, Database.Statement>,
  };
}

export type Statements = ReturnType<typeof prepare>;
