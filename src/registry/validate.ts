/**
 * Checks and normalizes what callers give the registry (a new node, an update), so that every
 * backend stores the same canonical values and refuses the same mistakes with the same messages.
 */
import { isIPv4 } from 'node:net';
import { parseMac } from '../util/mac.js';
import { isPlainName } from '../util/names.js';
import { ImportEntryError, RegistryValueError } from './errors.js';
import type { GroupUpdate, NewNode, NodeRecord, NodeUpdate } from './types.js';

/** Attribute keys: a letter, then letters, digits, `_`, `-` or `.` (`rack`, `power.driver`). */
const ATTR_KEY = /^[A-Za-z][A-Za-z0-9_.-]*$/;

export function checkName(name: unknown, what: string): string {
  if (typeof name !== 'string' || !isPlainName(name)) {
    throw new RegistryValueError(`invalid ${what} ${JSON.stringify(name)}: use letters, digits and . _ + - only`);
  }
  return name;
}

/** Canonical hardware address, or a RegistryValueError naming the input. */
export function checkNodeid(nodeid: unknown): string {
  const mac = typeof nodeid === 'string' ? parseMac(nodeid) : null;
  if (mac === null) throw new RegistryValueError(`invalid hardware address ${JSON.stringify(nodeid)}: expected e.g. 52:54:00:12:34:56`);
  return mac;
}

export function checkAttrKey(key: string): string {
  if (!ATTR_KEY.test(key)) {
    throw new RegistryValueError(`invalid attribute name ${JSON.stringify(key)}: start with a letter, then letters, digits, _ - or .`);
  }
  return key;
}

/** Checks the inheritable fields shared by nodes and groups; `undefined` means "leave as is". */
function checkCommon(u: NodeUpdate | GroupUpdate): void {
  if (u.vnfs !== undefined && u.vnfs !== null && u.vnfs !== '') checkName(u.vnfs, 'vnfs name');
  if (u.enabled !== undefined && u.enabled !== null && typeof u.enabled !== 'boolean') {
    throw new RegistryValueError(`invalid enabled ${JSON.stringify(u.enabled)}: expected true or false`);
  }
  if (u.debug !== undefined && u.debug !== null && !(Number.isInteger(u.debug) && u.debug >= 0)) {
    throw new RegistryValueError(`invalid debug level ${JSON.stringify(u.debug)}: expected a whole number >= 0`);
  }
  if (u.boot !== undefined && u.boot !== null && u.boot !== 'pxe' && u.boot !== 'local') {
    throw new RegistryValueError(`invalid boot ${JSON.stringify(u.boot)}: expected pxe or local`);
  }
  if (u.desc !== undefined && u.desc !== null && typeof u.desc !== 'string') throw new RegistryValueError('invalid desc: expected text');
  for (const [k, v] of Object.entries(u.attrs ?? {})) {
    checkAttrKey(k);
    if (v !== null && typeof v !== 'string') throw new RegistryValueError(`invalid value of attribute ${k}: expected text`);
  }
}

/** Checks a node update (what `node set` changes). */
export function checkNodeUpdate(u: NodeUpdate): NodeUpdate {
  checkCommon(u);
  if (u.group !== undefined && u.group !== null) checkName(u.group, 'group name');
  if (u.ipaddr !== undefined && u.ipaddr !== null && !isIPv4(u.ipaddr)) {
    throw new RegistryValueError(`invalid ipaddr ${JSON.stringify(u.ipaddr)}: not an IPv4 address`);
  }
  return u;
}

export function checkGroupUpdate(u: GroupUpdate): GroupUpdate {
  checkCommon(u);
  return u;
}

/** A complete, canonical record for a new node: unset fields null (inherit), attrs without nulls. */
export function normalizeNewNode(n: NewNode): NodeRecord {
  const name = checkName(n.name, 'node name');
  const nodeid = checkNodeid(n.nodeid);
  checkNodeUpdate(n as NodeUpdate);
  if (n.state !== undefined && n.state !== null && !/^\w+$/.test(n.state)) {
    throw new RegistryValueError(`invalid provisionary state ${JSON.stringify(n.state)}: must match ^\\w+$`);
  }
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(n.attrs ?? {})) if (v !== null && v !== undefined) attrs[k] = v;
  return {
    name,
    nodeid,
    group: n.group ?? null,
    vnfs: n.vnfs ?? null,
    enabled: n.enabled ?? null,
    debug: n.debug ?? null,
    ipaddr: n.ipaddr ?? null,
    desc: n.desc ?? null,
    boot: n.boot ?? null,
    state: n.state ?? null,
    lastcontact: n.lastcontact ?? null,
    lastaddr: n.lastaddr ?? null,
    bootVnfs: n.bootVnfs ?? null,
    bootImage: n.bootImage ?? null,
    attrs,
  };
}

/** Applies an (already checked) attribute update: a null value removes the key. */
export function mergeAttrs(current: Record<string, string>, update: Record<string, string | null> | undefined): Record<string, string> {
  if (!update) return current;
  const out = { ...current };
  for (const [k, v] of Object.entries(update)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

/**
 * The records of an import, each normalized, none naming a node or hardware address an earlier entry
 * names: an ImportEntryError naming the entry (1-based) otherwise. Every backend imports through it.
 */
export function normalizeImport(nodes: readonly NewNode[]): NodeRecord[] {
  const records = nodes.map((n, i) => {
    try {
      return normalizeNewNode(n);
    } catch (err) {
      throw new ImportEntryError(i, `entry ${i + 1}: ${(err as Error).message}`, { cause: err });
    }
  });
  const names = new Map<string, number>();
  const ids = new Map<string, number>();
  records.forEach((r, i) => {
    const dupName = names.get(r.name);
    if (dupName !== undefined) throw new ImportEntryError(i, `entry ${i + 1}: node name ${r.name} is also entry ${dupName + 1}`);
    const dupId = ids.get(r.nodeid);
    if (dupId !== undefined) throw new ImportEntryError(i, `entry ${i + 1}: hardware address ${r.nodeid} is also entry ${dupId + 1}`);
    names.set(r.name, i);
    ids.set(r.nodeid, i);
  });
  return records;
}
