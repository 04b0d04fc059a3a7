/** The groups the commands know: those with settings, and those only named by nodes or the defaults. */
import type { Config } from '../config/schema.js';
import type { GroupRecord, RegistryStore } from '../registry/types.js';
import { NodeNotFoundError } from '../util/errors.js';
import { compareNames } from '../util/patterns.js';

export interface GroupInfo {
  group: GroupRecord;
  /** Names of the nodes in it, sorted. */
  nodes: string[];
}

export async function listGroupInfo(reg: RegistryStore, config: Config): Promise<GroupInfo[]> {
  const byName = new Map<string, GroupInfo>();
  const get = (name: string) => {
    let g = byName.get(name);
    if (!g) byName.set(name, (g = { group: { name, vnfs: null, enabled: null, debug: null, boot: null, desc: null, attrs: {} }, nodes: [] }));
    return g;
  };
  for (const g of await reg.listGroups()) get(g.name).group = g;
  for (const n of await reg.listNodes()) get(n.group ?? config.defaults.group).nodes.push(n.name);
  for (const g of byName.values()) g.nodes.sort(compareNames);
  return [...byName.values()].sort((a, b) => compareNames(a.group.name, b.group.name));
}

export async function groupInfo(reg: RegistryStore, config: Config, name: string): Promise<GroupInfo> {
  const g = (await listGroupInfo(reg, config)).find((x) => x.group.name === name);
  if (!g) throw new NodeNotFoundError(`no group named ${JSON.stringify(name)} (no settings and no nodes)`);
  return g;
}
