/**
 * Turning node patterns into resolved nodes (group attributes merged) and a node into its power
 * driver: what every fanned-out action starts with, whether the CLI or a task runs it.
 */
import type { Config } from '../config/schema.js';
import { createDriver, type PowerDriver } from '../power/index.js';
import { powerSettings } from '../power/settings.js';
import type { RegistryStore, ResolvedNode } from '../registry/types.js';
import { UsageError } from '../util/errors.js';
import { parseMac } from '../util/mac.js';
import { compareNames, matchPatterns } from '../util/patterns.js';

/** The nodes the patterns name (names or MACs), resolved, in name order. Unmatched patterns are a UsageError. */
export async function selectNodes(registry: RegistryStore, config: Config, patterns: readonly string[]): Promise<ResolvedNode[]> {
  const all = await registry.listNodes();
  // A hardware address names its node (the API accepts both); everything else is a name pattern.
  const byMac = new Map(all.map((n) => [n.nodeid, n.name]));
  const named = patterns.map((p) => {
    const mac = parseMac(p);
    return mac !== null && byMac.has(mac) ? byMac.get(mac)! : p;
  });
  const { matched, unmatched } = matchPatterns(named, all.map((n) => n.name));
  if (unmatched.length) throw new UsageError(`${unmatched.map((p) => JSON.stringify(p)).join(', ')} ${unmatched.length === 1 ? 'matches' : 'match'} no node`);
  const byName = new Map(all.map((n) => [n.name, n]));
  return (await resolveAll(registry, config, matched.map((name) => byName.get(name)!))).sort((a, b) => compareNames(a.name, b.name));
}

/** The nodes of these names as they are now; a name no longer registered is left out. */
export async function resolveNames(registry: RegistryStore, config: Config, names: readonly string[]): Promise<Map<string, ResolvedNode>> {
  const recs = (await Promise.all(names.map((n) => registry.getNode(n)))).filter((r) => r !== null);
  return new Map((await resolveAll(registry, config, recs)).map((n) => [n.name, n]));
}

function resolveAll(registry: RegistryStore, config: Config, recs: Parameters<RegistryStore['resolve']>[0][]): Promise<ResolvedNode[]> {
  const { group, vnfs, enabled, debug } = config.defaults;
  return Promise.all(recs.map((r) => registry.resolve(r, { group, vnfs, enabled, debug })));
}

/** A node's driver; throws the error that explains why it has none usable. */
export function driverFor(node: ResolvedNode, config: Config): PowerDriver {
  return createDriver({ name: node.name, nodeid: node.nodeid, settings: powerSettings(node.name, node.attrs, config.statedir) });
}
