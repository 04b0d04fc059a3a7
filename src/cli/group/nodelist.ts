/** `provisiond group nodelist <G>`: the names of the group's nodes, one per line. */
import type { Command } from 'commander';
import { withRegistry } from '../node/shared.js';
import { groupInfo } from '../../nodes/groups.js';

export function register(group: Command): void {
  group
    .command('nodelist')
    .description("print the names of a group's nodes, one per line")
    .argument('<group>', 'group name')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx, config) => {
        for (const n of (await groupInfo(reg, config, name)).nodes) ctx.out.write(`${n}\n`);
      });
    });
}
