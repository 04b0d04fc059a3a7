/**
 * The registry's nodes in the CLI's name order, for paging. Sorting 10,000 names the natural way
 * costs about 20 ms of the event loop that DHCP shares; the order only changes when a node is added,
 * removed or renamed, so it is kept and reused while the set of names stays the same (records that
 * changed, a contact, a setting, are still the current ones).
 */
import type { NodeRecord, RegistryStore } from '../registry/types.js';
import { compareNames } from '../util/patterns.js';

interface Order {
  names: string[];
  set: Set<string>;
}

const orders = new WeakMap<RegistryStore, Order>();

export async function nodesByName(registry: RegistryStore): Promise<NodeRecord[]> {
  const nodes = await registry.listNodes();
  const byName = new Map<string, NodeRecord>();
  for (const n of nodes) byName.set(n.name, n);
  const known = orders.get(registry);
  if (known && known.names.length === nodes.length && nodes.every((n) => known.set.has(n.name))) {
    return known.names.map((name) => byName.get(name)!);
  }
  const sorted = nodes.slice().sort((a, b) => compareNames(a.name, b.name));
  const names = sorted.map((n) => n.name);
  orders.set(registry, { names, set: new Set(names) });
  return sorted;
}
