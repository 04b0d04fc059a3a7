/**
 * `provisiond power on|off|shutdown|reset|cycle|status|interrogate <PATTERN...>`: the verb on every
 * matched node, in parallel within `power.concurrency`, one line per node, non-zero exit when any
 * node failed. Each action is also recorded in the node's timeline.
 */
import type { Command } from 'commander';
import { cliContext, type CliContext } from '../context.js';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import type { RegistryStore } from '../../registry/types.js';
import { cliRunner, interruptCancels, nodeLine, submitTask } from '../task/shared.js';
import { POWER_ACTIONS, type PowerAction, type PowerVerb } from '../../power/types.js';
import { commandLogger, dryRunLines, fanOutOptions, fanOutParams, fanOutSettings, printLines, resultText, runOnNodes, selectNodes, withRegistry, type FanOutFlags } from './common.js';

const HELP: Record<PowerAction | 'status' | 'interrogate', string> = {
  on: 'power the nodes on',
  off: 'power the nodes off, hard (no orderly shutdown)',
  shutdown: 'ask the nodes to shut down in an orderly way (ACPI soft-off)',
  reset: 'hard-reset the nodes',
  cycle: 'power the nodes off and on again',
  status: 'print the power state of the nodes: on, off or unknown',
  interrogate: 'print what the BMC tells about the nodes (model, serial, sensors, event log)',
};

export function register(program: Command): void {
  const power = program.command('power').description('out-of-band power control through each node\'s power.driver (ipmi, redfish, exec, qemu)');
  for (const verb of [...POWER_ACTIONS, 'status', 'interrogate'] as const) {
    fanOutOptions(power.command(`${verb} <pattern...>`).description(HELP[verb])).action(async (patterns: string[], flags: FanOutFlags, cmd: Command) => {
      await runPower(cmd, verb, patterns, flags);
    });
  }
}

async function runPower(cmd: Command, verb: PowerVerb, patterns: string[], flags: FanOutFlags): Promise<void> {
  const ctx = cliContext(cmd);
  const config = ctx.config();
  const logger = commandLogger(config, flags.verbose);
  await withRegistry(ctx, logger, async (registry) => {
    const nodes = await selectNodes(registry, config, patterns);
    if (flags.dryRun) {
      printLines(ctx.out, dryRunLines(nodes, config, (d) => d.describe(verb, undefined, flags.showPasswords)));
      return;
    }
    if (verb !== 'status' && verb !== 'interrogate') {
      await runPowerTask(ctx, registry, config, logger, verb as PowerAction, patterns, flags);
      return;
    }
    const settings = fanOutSettings(config, flags);
    const results = await runOnNodes(nodes, config, settings, async (driver, node, signal) => {
      logger.debug({ node: node.name, run: driver.describe(verb) }, `power ${verb}`);
      if (verb === 'status') return driver.status({ signal });
      return driver.interrogate({ signal });
    });
    const rows: Array<[string, string]> = [];
    for (const r of results) {
      if (verb === 'interrogate' && r.ok) {
        for (const [k, v] of Object.entries(r.value as Record<string, string>)) rows.push([r.name, `${k}: ${v}`]);
        continue;
      }
      rows.push([r.name, verb === 'status' && r.ok ? String(r.value) : resultText(r, () => `${verb} ok`)]);
    }
    printLines(ctx.out, rows);
    summary(ctx, verb, results.filter((r) => !r.ok).length, results.length);
  });
}

/** An action verb runs as a task (in the registry, visible to the API); one line per node as it ends. */
async function runPowerTask(ctx: CliContext, registry: RegistryStore, config: Config, logger: Logger, verb: PowerAction, patterns: string[], flags: FanOutFlags): Promise<void> {
  const runner = cliRunner(registry, config, logger);
  try {
    const task = await submitTask(runner, ctx.err, { action: 'power', params: { nodes: patterns, action: verb, ...fanOutParams(config, flags) } });
    const release = interruptCancels(runner, task.id, ctx.err);
    const done = await runner.wait(task.id).finally(release);
    printLines(ctx.out, done.nodes.map((n) => [n.node, nodeLine(n, `${verb} ok`)]));
    summary(ctx, verb, done.nodes.filter((n) => n.result !== 'success').length, done.nodes.length);
  } finally {
    await runner.close();
  }
}

function summary(ctx: CliContext, verb: PowerVerb, failed: number, total: number): void {
  if (!failed) return;
  ctx.err.write(`provisiond: power ${verb}: ${failed} of ${total} node${total === 1 ? '' : 's'} failed\n`);
  process.exitCode = 1;
}
