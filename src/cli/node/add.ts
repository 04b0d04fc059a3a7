/** `provisiond node add <MAC> [NAME]`: registers a node by hand (the name from the pattern when omitted). */
import type { Command } from 'commander';
import { RegistryConflictError } from '../../registry/errors.js';
import type { NodeRecord, RegistryStore } from '../../registry/types.js';
import { checkNodeid } from '../../registry/validate.js';
import { nextFreeName } from '../../util/patterns.js';
import type { Config } from '../../config/schema.js';
import { checkVnfsExists, withRegistry } from './shared.js';
import { NamePatternExhaustedError } from '../../registry/types.js';

interface AddOptions {
  group?: string;
  vnfs?: string;
  ipaddr?: string;
  desc?: string;
  force?: boolean;
}

export function register(node: Command): void {
  node
    .command('add')
    .description('register a node: its hardware address and name (default: the next free name of defaults.nodeName)')
    .argument('<mac>', 'hardware address, e.g. 52:54:00:12:34:56 (any case, : or -)')
    .argument('[name]', 'node name')
    .option('-g, --group <group>', 'group (default: defaults.group)')
    .option('--vnfs <vnfs>', 'VNFS the node boots (default: inherited from its group)')
    .option('--ipaddr <ip>', 'fixed IPv4 address')
    .option('--desc <text>', 'description')
    .option('--force', 'accept a VNFS that does not exist (yet)')
    .action(async (mac: string, name: string | undefined, opts: AddOptions, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx, config) => {
        if (opts.vnfs !== undefined) checkVnfsExists(config, opts.vnfs, opts.force);
        const added = await addNode(reg, config, mac, name, opts);
        ctx.out.write(`added ${added.name} ${added.nodeid}\n`);
      });
    });
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

