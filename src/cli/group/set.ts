/** `provisiond group set <key> <value> <G>` and `group unset <key> <G>`, `group delete <G>`. */
import type { Command } from 'commander';
import { GROUP_FIELDS, groupUpdate } from '../../nodes/fields.js';
import { withRegistry } from '../node/shared.js';

export function register(group: Command): void {
  group
    .command('set')
    .description(`set a group setting its nodes inherit (${GROUP_FIELDS.join(', ')}, or any attribute such as power.driver); creates the group`)
    .argument('<key>', 'setting or attribute name')
    .argument('<value>', 'value (enabled: yes|no, boot: pxe|local, debug: a number)')
    .argument('<group>', 'group name')
    .option('--force', 'accept a VNFS that does not exist (yet)')
    .action(async (key: string, value: string, name: string, opts: { force?: boolean }, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx, config) => {
        await reg.updateGroup(name, groupUpdate(key, value, config, opts));
        ctx.out.write(`set ${key} on group ${name}\n`);
      });
    });

  group
    .command('unset')
    .description('remove a group setting (its nodes then get the default)')
    .argument('<key>', 'setting or attribute name')
    .argument('<group>', 'group name')
    .action(async (key: string, name: string, _opts: unknown, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx, config) => {
        await reg.updateGroup(name, groupUpdate(key, null, config));
        ctx.out.write(`unset ${key} on group ${name}\n`);
      });
    });

  group
    .command('delete')
    .description("delete a group's settings (its nodes keep the group name and get the defaults)")
    .argument('<group>', 'group name')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx) => {
        await reg.deleteGroup(name);
        ctx.out.write(`deleted the settings of group ${name}\n`);
      });
    });
}
