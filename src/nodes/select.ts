/**
 * Choosing nodes as admins name them: names, hardware addresses, bracket ranges and globs (the CLI's
 * patterns), and the same change or deletion applied to many nodes in one transaction.
 */
import type { NodeRecord, NodeUpdate, RegistryStore } from '../registry/types.js';
import { NodeNotFoundError, UsageError } from '../util/errors.js';
import { parseMac } from '../util/mac.js';
import { compareNames, matchPatterns } from '../util/patterns.js';

/** Hardware addresses compare canonical; a glob over them is upper-cased with `:` separators. */
export function normalizeNodeid(s: string): string {
  return parseMac(s) ?? s.toUpperCase().replaceAll('-', ':');
}

/**
 * The nodes matching `patterns` (names, or hardware addresses with `byNodeid`), sorted by name.
 * No pattern: every node when `allIfNone`, else a UsageError. A pattern matching nothing is an error.
 */
export async function selectNodes(reg: RegistryStore, patterns: string[], options: { byNodeid?: boolean; allIfNone?: boolean } = {}): Promise<NodeRecord[]> {
  const nodes = (await reg.listNodes()).slice().sort((a, b) => compareNames(a.name, b.name));
  if (patterns.length === 0) {
    if (options.allIfNone) return nodes;
    throw new UsageError('no node given: name one or more nodes or patterns (n00[01-16], n00*)');
  }
  const key = options.byNodeid ? (n: NodeRecord) => n.nodeid : (n: NodeRecord) => n.name;
  const { matched, unmatched } = matchPatterns(patterns, nodes.map(key), options.byNodeid ? normalizeNodeid : undefined);
  if (unmatched.length > 0) {
    throw new UsageError(`no node ${options.byNodeid ? 'with hardware address matching' : 'matches'} ${unmatched.map((p) => JSON.stringify(p)).join(', ')}`);
  }
  const wanted = new Set(matched);
  return nodes.filter((n) => wanted.has(key(n)));
}

/**
 * Which of `nodes` the patterns name, where each pattern is a name pattern or a hardware address
 * (`52:54:00:12:34:56`, any case, `:` or `-`). `unmatched` lists the patterns that named nothing.
 */
export function matchNodes(nodes: readonly NodeRecord[], patterns: readonly string[]): { nodes: NodeRecord[]; unmatched: string[] } {
  const macs = patterns.filter((p) => parseMac(p) !== null);
  const names = patterns.filter((p) => parseMac(p) === null);
  const wanted = new Set<string>();
  const unmatched: string[] = [];
  if (names.length > 0) {
    const m = matchPatterns(names, nodes.map((n) => n.name));
    for (const n of m.matched) wanted.add(n);
    unmatched.push(...m.unmatched);
  }
  for (const p of macs) {
    const mac = parseMac(p)!;
    const n = nodes.find((x) => x.nodeid === mac);
    if (n) wanted.add(n.name);
    else unmatched.push(p);
  }
  return { nodes: nodes.filter((n) => wanted.has(n.name)), unmatched };
}

/**
 * Splits a comma-separated list of patterns, keeping the commas of bracket ranges (`n[1-3,7],m*`
 * is two patterns).
 */
export function splitPatterns(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '[') depth++;
    else if (ch === ']') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** The node named `which`: its name, or its hardware address. A NodeNotFoundError otherwise. */
export async function findNode(reg: RegistryStore, which: string): Promise<NodeRecord> {
  const mac = parseMac(which);
  const node = (await reg.getNode(which)) ?? (mac ? await reg.getNodeByNodeid(mac) : null);
  if (!node) throw new NodeNotFoundError(`no node named ${JSON.stringify(which)} (give a node name or a hardware address)`);
  return node;
}

/** Names of nodes in a short form for messages: `n0001, n0002 and 14 more`. */
export function fewNames(nodes: Array<{ name: string }>, max = 5): string {
  const names = nodes.slice(0, max).map((n) => n.name);
  return nodes.length > max ? `${names.join(', ')} and ${nodes.length - max} more` : names.join(', ');
}

/** The same update on every node: one transaction when the backend can, else node by node. */
export async function updateAll(reg: RegistryStore, nodes: NodeRecord[], update: NodeUpdate): Promise<void> {
  if (reg.updateNodes) await reg.updateNodes(nodes.map((n) => n.name), update);
  else for (const n of nodes) await reg.updateNode(n.name, update);
}

/** Deletes every node: one transaction when the backend can, else node by node. */
export async function deleteAll(reg: RegistryStore, nodes: NodeRecord[]): Promise<void> {
  if (reg.deleteNodes) await reg.deleteNodes(nodes.map((n) => n.name));
  else for (const n of nodes) await reg.deleteNode(n.name);
}
