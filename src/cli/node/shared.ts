/**
 * What the node and group commands share: opening the registry named by the config, choosing nodes
 * by pattern (a pattern that matches nothing is an error), and parsing the values of `set`.
 * Other nouns (power, script, console) use `withRegistry` and `selectNodes` too.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import { openRegistry } from '../../registry/open.js';
import type { NodeRecord, NodeUpdate, RegistryStore } from '../../registry/types.js';
import { UsageError } from '../../util/errors.js';
import { parseMac } from '../../util/mac.js';
import { compareNames, matchPatterns } from '../../util/patterns.js';
import { statePath } from '../../config/load.js';
import { cliContext, type CliContext } from '../context.js';

/** A logger for commands: warnings and errors as one line on stderr, the rest dropped. */
export function cliLogger(err: NodeJS.WritableStream = process.stderr): Logger {
  const line = (msg: string) => err.write(`provisiond: ${msg}\n`);
  const l: Logger = { debug() {}, info() {}, warn: (_f, msg) => line(msg), error: (_f, msg) => line(msg), child: () => l };
  return l;
}

/** Runs `fn` with the configured registry open, and closes it (flushing) whatever happens. */
export async function withRegistry<T>(cmd: Command, fn: (reg: RegistryStore, ctx: CliContext, config: Config) => Promise<T>): Promise<T> {
  const ctx = cliContext(cmd);
  const config = ctx.config();
  const reg = await openRegistry(config, cliLogger(ctx.err));
  try {
    return await fn(reg, ctx, config);
  } finally {
    await reg.close();
  }
}

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

/** `yes/no/true/false/1/0/on/off` -> boolean. */
export function parseBool(value: string, what: string): boolean {
  const v = value.toLowerCase();
  if (['yes', 'true', '1', 'on', 'enabled'].includes(v)) return true;
  if (['no', 'false', '0', 'off', 'disabled'].includes(v)) return false;
  throw new UsageError(`invalid ${what} ${JSON.stringify(value)}: use yes or no`);
}

export function parseDebug(value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`invalid debug level ${JSON.stringify(value)}: use a whole number >= 0`);
  return Number(value);
}

export function parseBoot(value: string): 'pxe' | 'local' {
  const v = value.toLowerCase();
  if (v === 'pxe' || v === 'local') return v;
  if (v === 'disk') return 'local';
  throw new UsageError(`invalid boot ${JSON.stringify(value)}: use pxe or local`);
}

/** A VNFS must exist as `<statedir>/vnfs/<name>/` (imported or built) unless the admin forces it. */
export function checkVnfsExists(config: Config, vnfs: string, force: boolean | undefined): void {
  if (vnfs === '' || force) return;
  const dir = statePath(config, `vnfs/${vnfs}`);
  if (!existsSync(dir)) {
    throw new UsageError(`no vnfs named ${JSON.stringify(vnfs)} (${dir} does not exist): import or build it first, or use --force`);
  }
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
