/** `provisiond node delete <PATTERN...>`: asks first (on a terminal) unless `-y`. */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { UsageError } from '../../util/errors.js';
import { deleteAll, fewNames, selectNodes, withRegistry } from './shared.js';

export function register(node: Command): void {
  node
    .command('delete')
    .alias('rm')
    .description('delete nodes from the registry (asks for confirmation unless -y)')
    .argument('<pattern...>', 'node names or patterns')
    .option('-i, --nodeid', 'patterns match hardware addresses instead of names')
    .option('-y, --yes', 'do not ask')
    .action(async (patterns: string[], opts: { nodeid?: boolean; yes?: boolean }, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx) => {
        const nodes = await selectNodes(reg, patterns, { byNodeid: opts.nodeid });
        const what = `${nodes.length} node${nodes.length === 1 ? '' : 's'} (${fewNames(nodes)})`;
        if (!opts.yes && !(await confirm(`delete ${what}? [y/N] `))) {
          throw new UsageError(process.stdin.isTTY ? 'nothing deleted' : `not deleting ${what} without confirmation: add -y`);
        }
        await deleteAll(reg, nodes);
        ctx.out.write(`deleted ${what}\n`);
      });
    });
}

/** Asks on the terminal; without one there is nobody to ask, so the answer is no. */
async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}
