/** `provisiond node add <MAC> [NAME]`: registers a node by hand (the name from the pattern when omitted). */
import type { Command } from 'commander';
import { addNode, type AddOptions } from '../../nodes/add.js';
import { checkVnfsExists, withRegistry } from './shared.js';

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
    .action(async (mac: string, name: string | undefined, opts: AddOptions & { force?: boolean }, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx, config) => {
        if (opts.vnfs !== undefined) checkVnfsExists(config, opts.vnfs, opts.force);
        const added = await addNode(reg, config, mac, name, opts);
        ctx.out.write(`added ${added.name} ${added.nodeid}\n`);
      });
    });
}
