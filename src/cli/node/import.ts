/**
 * `provisiond node import <FILE>`: `MAC name` lines (ethers) or CSV with a header; all or nothing in
 * one transaction, an error names the file and line.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { importNodeList } from '../../nodes/add.js';
import { UsageError } from '../../util/errors.js';
import { withRegistry } from './shared.js';

export function register(node: Command): void {
  node
    .command('import')
    .description('add the nodes listed in FILE ("MAC name" lines, or CSV with a header nodeid,name,group,vnfs,ipaddr): all or none')
    .argument('<file>', 'the list; - reads standard input')
    .action(async (file: string, _opts: unknown, cmd: Command) => {
      let text: string;
      try {
        text = readFileSync(file === '-' ? 0 : file, 'utf8');
      } catch (err) {
        throw new UsageError(`reading ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
      }
      await withRegistry(cmd, async (reg, ctx, config) => {
        const count = await importNodeList(reg, config, text, file);
        ctx.out.write(`imported ${count} node${count === 1 ? '' : 's'} from ${file}\n`);
      });
    });
}
