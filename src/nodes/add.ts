/**
 * Registering nodes by hand (`node add`, `POST /nodes`) and from a list (`node import`,
 * `POST /nodes/import`): unnamed nodes get the next free names of `defaults.nodeName`, and an import
 * is all or nothing, its error naming the list's line.
 */
import type { Config } from '../config/schema.js';
import { ImportEntryError, RegistryConflictError } from '../registry/errors.js';
import { parseNodeList } from '../registry/node-list.js';
import { NamePatternExhaustedError, type NewNode, type NodeRecord, type RegistryStore } from '../registry/types.js';
import { checkNodeid } from '../registry/validate.js';
import { ProvisiondError, UsageError } from '../util/errors.js';
import { nextFreeName } from '../util/patterns.js';

export interface AddOptions {
  group?: string;
  vnfs?: string;
  ipaddr?: string;
  desc?: string;
}

/** Adds with the given name, or with the next free name (retrying if another process takes it first). */
export async function addNode(reg: RegistryStore, config: Config, mac: string, name: string | undefined, opts: AddOptions): Promise<NodeRecord> {
  const nodeid = checkNodeid(mac);
  const fields = { nodeid, group: opts.group ?? config.defaults.group, vnfs: opts.vnfs ?? null, ipaddr: opts.ipaddr ?? null, desc: opts.desc ?? null };
  if (name !== undefined) return reg.addNode({ ...fields, name });
  const d = config.defaults;
  for (let attempt = 0; ; attempt++) {
    const taken = new Set((await reg.listNodes()).map((n) => n.name));
    const free = nextFreeName(d.nodeName, d.firstNode, d.totalNodes, (n) => taken.has(n));
    if (free === null) throw new NamePatternExhaustedError(`no free name left in pattern ${d.nodeName}: give a name, or raise defaults.totalNodes`);
    try {
      return await reg.addNode({ ...fields, name: free });
    } catch (err) {
      // Someone (the daemon auto-registering) took the name in between: try the next one.
      if (!(err instanceof RegistryConflictError) || attempt >= 10 || (await reg.getNode(free)) === null) throw err;
    }
  }
}

/**
 * Imports the nodes listed in `text` (ethers lines or CSV with a header; parseNodeList), `file`
 * naming it in errors: all or none. Returns how many were added. An error names `file:line`.
 */
export async function importNodeList(reg: RegistryStore, config: Config, text: string, file: string): Promise<number> {
  const listed = parseNodeList(text, file);
  if (listed.length === 0) throw new UsageError(`${file}: no nodes listed`);
  const taken = new Set((await reg.listNodes()).map((n) => n.name));
  for (const l of listed) if (l.node.name !== null) taken.add(l.node.name);
  const d = config.defaults;
  const nodes: NewNode[] = listed.map(({ node }) => {
    let name = node.name;
    if (name === null) {
      name = nextFreeName(d.nodeName, d.firstNode, d.totalNodes, (n) => taken.has(n));
      if (name === null) throw new NamePatternExhaustedError(`${file}: no free name left in pattern ${d.nodeName} for the unnamed nodes`);
      taken.add(name);
    }
    return { ...node, name, group: node.group ?? d.group };
  });
  try {
    return await reg.importNodes(nodes);
  } catch (err) {
    if (err instanceof ImportEntryError) {
      const line = listed[err.index]!.line;
      throw new ProvisiondError(`${file}:${line}: ${err.message.replace(/^entry \d+( \([^)]*\))?: /, '')} (nothing imported)`, { cause: err });
    }
    throw err;
  }
}
