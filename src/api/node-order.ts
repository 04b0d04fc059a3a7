/**
 * The registry's nodes in the CLI's name order, for paging. Sorting 10,000 names the natural way
 * costs about 20 ms of the event loop that DHCP shares; the order only changes when a node is added,
 * removed or renamed, so it is kept and reused while the set of names stays the same (records that
 * changed, a contact, a setting, are still the current ones). Checking the set and placing the
 * current records is one pass with one map lookup per node, paced (src/util/pacer.ts).
 */
import type { NodeRecord, RegistryStore } from '../registry/types.js';
import { compareNames } from '../util/patterns.js';
import type { Pacer } from '../util/pacer.js';

interface Order {
  /** Name -> position in the order. */
  position: Map<string, number>;
}

const orders = new WeakMap<RegistryStore, Order>();
const CHUNK = 1000;

export async function nodesByName(registry: RegistryStore, pacer: Pacer): Promise<NodeRecord[]> {
  const nodes = await registry.listNodes();
  const known = orders.get(registry);
  if (known && known.position.size === nodes.length) {
    const placed: NodeRecord[] = new Array<NodeRecord>(nodes.length);
    let same = true;
    for (let i = 0; i < nodes.length && same; i++) {
      if (i % CHUNK === 0) await pacer.pace();
      const at = known.position.get(nodes[i]!.name);
      if (at === undefined || placed[at] !== undefined) same = false;
      else placed[at] = nodes[i]!;
    }
    if (same) return placed;
  }
  await pacer.pace();
  const sorted = nodes.slice().sort((a, b) => compareNames(a.name, b.name));
  orders.set(registry, { position: new Map(sorted.map((n, i) => [n.name, i])) });
  return sorted;
}
