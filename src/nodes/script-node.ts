/** A registered node as its nodescripts see it: group and default inheritance applied, its address. */
import type { Config } from '../config/schema.js';
import type { NodeContext } from '../nodescript/types.js';
import type { NodeRecord, RegistryStore } from '../registry/types.js';

/** The context `script render` and the API's `/nodes/{n}/scripts/{state}` render for. */
export async function scriptNodeContext(reg: RegistryStore, config: Config, rec: NodeRecord, state: string): Promise<NodeContext> {
  const r = await reg.resolve(rec, config.defaults);
  const lease = r.ipaddr ? null : await reg.getLease(r.nodeid);
  return { state, nodename: r.name, nodeid: r.nodeid, group: r.group, vnfs: r.vnfs, enabled: r.enabled, debug: r.debug, ipaddr: r.ipaddr ?? lease?.address ?? r.lastaddr ?? '', attrs: r.attrs };
}
