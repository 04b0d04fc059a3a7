/** `provisiond vnfs delete <NAME>` and `vnfs clone <SRC> <DST>`. */
import type { Command } from 'commander';
import { cliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';
import { cloneCapsule, deleteCapsule } from '../../vnfs/capsule-ops.js';
import { forgetVnfsImage, nodesByVnfs } from './shared.js';

export function register(vnfs: Command): void {
  vnfs
    .command('delete')
    .alias('rm')
    .description('delete a VNFS (refused while nodes use it, unless --force)')
    .argument('<name>', 'VNFS name')
    .option('--force', 'delete even when nodes use it')
    .action(async (name: string, opts: { force?: boolean }, cmd: Command) => {
      const ctx = cliContext(cmd);
      const config = ctx.config();
      const users = await nodesByVnfs(config, ctx.err);
      const nodes = users?.get(name) ?? [];
      if (!opts.force && users === null) throw new UsageError(`cannot read the registry to see whether nodes use vnfs ${name}; use --force to delete anyway`);
      if (!opts.force && nodes.length > 0) {
        const shown = nodes.slice(0, 5).join(', ') + (nodes.length > 5 ? `, ... (${nodes.length} nodes)` : '');
        throw new UsageError(`vnfs ${name} is used by ${shown}: move them to another vnfs first, or --force`);
      }
      await deleteCapsule(config.statedir, name);
      const unforgotten = await forgetVnfsImage(config, name, ctx.err);
      ctx.out.write(`deleted vnfs ${name}${nodes.length ? ` (still assigned to ${nodes.length} nodes)` : ''}\n`);
      if (unforgotten) ctx.err.write(`warning: the servers sharing the database were not told (${unforgotten}): this server may fetch its image back from another\n`);
    });
  vnfs
    .command('clone')
    .description('copy a VNFS to a new name (rootfs, config, nodescripts; the image is rebuilt when needed)')
    .argument('<src>', 'existing VNFS')
    .argument('<dst>', 'new VNFS name')
    .action(async (src: string, dst: string, _opts: unknown, cmd: Command) => {
      const ctx = cliContext(cmd);
      await cloneCapsule(ctx.config().statedir, src, dst);
      ctx.out.write(`cloned vnfs ${src} to ${dst}\n`);
    });
}
