/** `provisiond node rename <OLD> <NEW>` and `node replace <NAME> <NEW-MAC>` (a motherboard swap). */
import type { Command } from 'commander';
import { withRegistry } from './shared.js';

export function register(node: Command): void {
  node
    .command('rename')
    .description('rename a node (its hardware address, settings and history stay)')
    .argument('<old>', 'current name')
    .argument('<new>', 'new name')
    .action(async (oldName: string, newName: string, _opts: unknown, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx) => {
        const n = await reg.renameNode(oldName, newName);
        ctx.out.write(`renamed ${oldName} to ${n.name}\n`);
      });
    });

  node
    .command('replace')
    .description('give a node a new hardware address (motherboard swap): name, settings, history and address stay')
    .argument('<name>', 'node name')
    .argument('<mac>', 'the new hardware address')
    .action(async (name: string, mac: string, _opts: unknown, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx) => {
        const old = await reg.getNode(name);
        const n = await reg.replaceNodeid(name, mac);
        ctx.out.write(`${n.name}: hardware address ${old?.nodeid ?? '?'} replaced by ${n.nodeid}\n`);
      });
    });
}
