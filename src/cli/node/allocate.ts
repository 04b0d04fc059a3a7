/**
 * `provisiond node allocate (--group G | --pattern P) --vnfs V --owner O [--hostname H] [--wait]`:
 * gives a free node (enabled, not allocated, with a power driver) to an owner, atomically, and deploys
 * the VNFS on it (the deploy task of `node deploy`). `provisiond node release NODE... [--keep]`: powers
 * each off (unless --keep) and frees it. The same allocations as the API's /allocations.
 */
import type { Command } from 'commander';
import { allocateNode, allocationOf, NoFreeNodeError, releaseNode } from '../../nodes/allocate.js';
import { ProvisiondError, UsageError } from '../../util/errors.js';
import { cliContext } from '../context.js';
import { commandLogger, withRegistry as withPowerRegistry } from '../power/common.js';
import { reloadNodes, reloadOptions, type ReloadFlags } from '../reload/index.js';
import { cliRunner, submitTask } from '../task/shared.js';
import { selectNodes } from './shared.js';

interface AllocateFlags extends ReloadFlags {
  group?: string;
  pattern?: string;
  vnfs?: string;
  owner?: string;
  hostname?: string;
}

export function registerAllocate(node: Command): void {
  reloadOptions(
    node
      .command('allocate')
      .description('give a free node of a group (or pattern) to an owner and deploy a VNFS on it; prints the node')
      .option('--group <group>', 'take a node of this group')
      .option('--pattern <patterns>', 'or one these (comma-separated) patterns match')
      .requiredOption('--vnfs <vnfs>', 'the VNFS to deploy on it')
      .requiredOption('--owner <owner>', 'who it is for (a tenant, a VM id, a reservation)')
      .option('--hostname <name>', 'the host name it takes instead of its node name'),
  ).action(async (flags: AllocateFlags, cmd: Command) => {
    const ctx = cliContext(cmd);
    const config = ctx.config();
    const logger = commandLogger(config, flags.verbose);
    if (flags.dryRun) throw new UsageError('node allocate: --dry-run is not supported (an allocation is a claim)');
    const name = await withPowerRegistry(ctx, logger, async (registry) => {
      try {
        const n = await allocateNode(registry, config, { group: flags.group, pattern: flags.pattern, vnfs: flags.vnfs!, owner: flags.owner!, hostname: flags.hostname });
        return n.name;
      } catch (err) {
        if (err instanceof NoFreeNodeError) throw new ProvisiondError(`node allocate: ${err.message}`);
        throw err;
      }
    });
    ctx.out.write(`${name}  allocated to ${flags.owner}\n`);
    try {
      await reloadNodes(cmd, [name], flags, flags.vnfs!);
    } catch (err) {
      // Not deployed: the node goes back to the pool.
      await withPowerRegistry(ctx, logger, (registry) => releaseNode(registry, name)).catch(() => {});
      throw err;
    }
  });

  node
    .command('release <node...>')
    .description('end nodes\' allocations: power them off (unless --keep) and free them')
    .option('--keep', 'leave the nodes running')
    .option('-v, --verbose', 'log each driver call')
    .action(async (patterns: string[], flags: { keep?: boolean; verbose?: boolean }, cmd: Command) => {
      const ctx = cliContext(cmd);
      const config = ctx.config();
      const logger = commandLogger(config, flags.verbose);
      await withPowerRegistry(ctx, logger, async (registry) => {
        const nodes = await selectNodes(registry, patterns);
        const notAllocated = nodes.filter((n) => !allocationOf(n)).map((n) => n.name);
        if (notAllocated.length > 0) throw new UsageError(`node release: not allocated: ${notAllocated.join(', ')}`);
        let powered = '';
        if (!flags.keep) {
          const runner = cliRunner(registry, config, logger);
          try {
            const task = await submitTask(runner, ctx.err, { action: 'power', params: { nodes: nodes.map((n) => n.name), action: 'off' } });
            const done = await runner.wait(task.id);
            const failed = done.nodes.filter((n) => n.result !== 'success');
            if (failed.length > 0) {
              for (const n of failed) ctx.err.write(`provisiond: node release: ${n.node}: power off failed: ${n.messages.at(-1)?.message ?? n.status}\n`);
              process.exitCode = 1;
            }
            powered = ' (powered off)';
          } finally {
            await runner.close();
          }
        }
        for (const n of nodes) {
          const was = await releaseNode(registry, n.name);
          ctx.out.write(`${n.name}  released from ${was.owner}${flags.keep ? ' (left running)' : powered}\n`);
        }
      });
    });
}
