/** `provisiond node set <key> <value> <PATTERN...>` and `node unset <key> <PATTERN...>`. */
import type { Command } from 'commander';
import { UsageError } from '../../util/errors.js';
import { nodeUpdate, NODE_FIELDS } from '../../nodes/fields.js';
import { selectNodes, updateAll, withRegistry } from './shared.js';

const KEYS_HELP = `keys: ${NODE_FIELDS.join(', ')}; any other key is an attribute (rack, power.driver), seen by nodescripts as ATTR_<KEY>`;

export function register(node: Command): void {
  node
    .command('set')
    .description(`set a field or attribute on nodes (${KEYS_HELP})`)
    .argument('<key>', 'field or attribute name')
    .argument('<value>', 'value (enabled: yes|no, boot: pxe|local, debug: a number)')
    .argument('<pattern...>', 'node names or patterns')
    .option('-i, --nodeid', 'patterns match hardware addresses instead of names')
    .option('--force', 'accept a VNFS that does not exist (yet)')
    .action(async (key: string, value: string, patterns: string[], opts: { nodeid?: boolean; force?: boolean }, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx, config) => {
        const update = nodeUpdate(key, value, config, opts);
        const nodes = await selectNodes(reg, patterns, { byNodeid: opts.nodeid });
        if (key === 'ipaddr' && nodes.length > 1) throw new UsageError(`a fixed ipaddr belongs to one node, but ${nodes.length} nodes match`);
        await updateAll(reg, nodes, update);
        ctx.out.write(`set ${key} on ${nodes.length} node${nodes.length === 1 ? '' : 's'}\n`);
      });
    });

  node
    .command('unset')
    .description('remove a field or attribute from nodes, so that the group or default value applies')
    .argument('<key>', 'field or attribute name')
    .argument('<pattern...>', 'node names or patterns')
    .option('-i, --nodeid', 'patterns match hardware addresses instead of names')
    .action(async (key: string, patterns: string[], opts: { nodeid?: boolean }, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx, config) => {
        const update = nodeUpdate(key, null, config);
        const nodes = await selectNodes(reg, patterns, { byNodeid: opts.nodeid });
        await updateAll(reg, nodes, update);
        ctx.out.write(`unset ${key} on ${nodes.length} node${nodes.length === 1 ? '' : 's'}\n`);
      });
    });
}
