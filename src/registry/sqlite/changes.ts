/**
 * Keeping a long-running process's index current when another process writes. Triggers (schema
 * versions 4 and 6) log every changed node, group, lease and declined address in `changes`; a process remembers the last id it
 * has seen and refreshes just those entries, instead of reloading 10,000 nodes because an admin
 * changed one. Too many changes, or a log pruned past what we saw, fall back to a full reload.
 */
import type { RegistryIndex } from '../memory-index.js';
import { groupFromRow, leaseFromRow, nodeFromRow, type Statements } from './statements.js';

/** Past this many changed entries a full reload is cheaper than refreshing one by one. */
const FULL_RELOAD_AT = 2000;

/** Changes kept in the log for processes that fall behind (the rest are pruned). */
export const CHANGES_KEPT = 100_000;

/**
 * Applies the changes logged after `since` to the index. Returns the last change id seen, or null
 * when the caller must reload everything. Batches committed by this process's writer thread are
 * enclosed in marks with its `token` (writer.ts): their changes are in the index already, skipped.
 * `seen.refreshed` (when given) gets the number of entries refreshed from the database.
 */
export function applyChanges(st: Statements, index: RegistryIndex, since: number, token: string | null = null, seen?: { refreshed: number }): number | null {
  const last = st.lastChange.get() ?? null;
  if (last === null) return since;
  const first = st.firstChange.get() ?? null;
  if (first !== null && first > since + 1 && since >= 0) return null; // pruned past us
  const own: Array<[number, number]> = [];
  let ownCount = 0;
  if (token !== null) {
    const marks = st.writerMarks.all(since, token);
    for (let i = 0; i + 1 < marks.length; i += 2) {
      own.push([marks[i]!, marks[i + 1]!]);
      ownCount += marks[i + 1]! - marks[i]! + 1;
    }
  }
  if (last - since - ownCount > FULL_RELOAD_AT * 3) return null;
  const nodes = new Set<string>();
  const groups = new Set<string>();
  const leases = new Set<string>();
  const declined = new Set<string>();
  const collect = (rows: Iterable<{ kind: string; key: string }>) => {
    for (const c of rows) {
      if (c.kind === 'node') nodes.add(c.key);
      else if (c.kind === 'group') groups.add(c.key);
      else if (c.kind === 'lease') leases.add(c.key);
      else if (c.kind === 'declined') declined.add(c.key);
    }
  };
  // Only the gaps between our own batches are read.
  let from = since;
  for (const [start, end] of own) {
    if (start > from + 1) collect(st.changesBetween.iterate(from, start));
    from = end;
  }
  collect(st.changesSince.iterate(from));
  const refreshed = nodes.size + groups.size + leases.size + declined.size;
  if (refreshed > FULL_RELOAD_AT) return null;
  if (seen) seen.refreshed = refreshed;
  for (const nodeid of nodes) refreshNode(st, index, nodeid);
  for (const name of groups) refreshGroup(st, index, name);
  for (const hwaddr of leases) refreshLease(st, index, hwaddr);
  for (const address of declined) refreshDeclined(st, index, address);
  return last;
}

function attrsOf(rows: Iterable<{ key: string; value: string }>): Record<string, string> {
  const attrs: Record<string, string> = {};
  for (const r of rows) attrs[r.key] = r.value;
  return attrs;
}

function refreshNode(st: Statements, index: RegistryIndex, nodeid: string): void {
  const old = index.byNodeid.get(nodeid);
  if (old) index.removeNode(old);
  const row = st.nodeByNodeid.get(nodeid);
  if (row) index.putNode(null, nodeFromRow(row, attrsOf(st.attrsOfNode.iterate(row.id))), true);
}

function refreshGroup(st: Statements, index: RegistryIndex, name: string): void {
  const row = st.groupByName.get(name);
  if (row) index.putGroup(groupFromRow(row, attrsOf(st.attrsOfGroup.iterate(name))));
  else index.groups.delete(name);
}

function refreshLease(st: Statements, index: RegistryIndex, hwaddr: string): void {
  const row = st.leaseByHwaddr.get(hwaddr);
  if (row) index.putLease(leaseFromRow(row));
  else index.removeLease(hwaddr);
}

function refreshDeclined(st: Statements, index: RegistryIndex, address: string): void {
  const row = st.declinedByAddress.get(address);
  if (row) index.putDeclined({ address: row.address, expires: row.expires }, true);
  else index.removeDeclined(address);
}
