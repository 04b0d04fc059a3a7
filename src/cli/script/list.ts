/** `provisiond script list <state> <node>`: the scripts a node would get, in order, and what happens to each. */
import type { Command } from 'commander';
import { discover, engineOptionsFromConfig } from '../../nodescript/index.js';
import type { PlanEntry } from '../../nodescript/types.js';
import { printJson, printTable } from '../node/output.js';
import { type NodeOptions, nodeOptions, scriptTarget } from './node-context.js';

const ACTION: Record<PlanEntry['action'], string> = {
  master: 'master',
  verbatim: 'node',
  skipped: 'skipped',
  shadowed: 'shadowed',
};

function detail(e: PlanEntry): string {
  const link = e.target ? `-> ${e.target}` : '';
  const what =
    e.action === 'master' ? 'runs on the master; its output goes to the node'
      : e.action === 'verbatim' ? 'sent to the node verbatim'
        : e.action === 'shadowed' ? `overridden by ${e.shadowedBy}/${e.name}`
          : (e.reason ?? '');
  return [what, link].filter(Boolean).join(' ');
}

export function register(script: Command): void {
  nodeOptions(
    script
      .command('list')
      .alias('ls')
      .description('list the nodescripts a node gets in a state, in order: name, folder, and whether it runs on the master, goes to the node verbatim, is shadowed or skipped')
      .argument('<state>', 'provisionary state (init, ready, ...)')
      .argument('<node>', 'node name (or hardware address) in the registry'),
  )
    .option('--json', 'print JSON')
    .action(async (state: string, name: string, opts: NodeOptions & { json?: boolean }, cmd: Command) => {
      const { node, config, ctx } = await scriptTarget(cmd, state, name, opts);
      // Discovery only: nothing runs, so no engine (and no spawner process) is started.
      const plan = await discover(engineOptionsFromConfig(config).statedir, state, node);
      if (opts.json) return printJson(ctx.out, plan);
      if (plan.length === 0 && ctx.out.isTTY) ctx.err.write(`provisiond: no nodescripts for ${node.nodename} in state ${state}\n`);
      printTable(ctx.out, ['NAME', 'FOLDER', 'ACTION', 'DETAIL'], plan.map((e) => [e.name, e.dir, ACTION[e.action], detail(e)]));
    });
}
