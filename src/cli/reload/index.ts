/**
 * `provisiond reload <PATTERN...> [--wait]`: Apache VCL's `load` — set the next boot to PXE, power
 * cycle (or power on a node that is off), and with --wait follow the nodes through their boot until
 * each reaches `ready` on its assigned VNFS or the wait times out. Progress comes from the registry
 * (state and last contact written by the HTTP service) and the node's boot timeline.
 */
import type { Command } from 'commander';
import { cliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';
import type { RegistryStore, TaskNode } from '../../registry/types.js';
import { isFinished, passedPower, POWERED, type TaskRunner } from '../../tasks/index.js';
import { commandLogger, dryRunLines, fanOutOptions, fanOutParams, printLines, selectNodes, withRegistry, type FanOutFlags } from '../power/common.js';
import { cliRunner, interruptCancels, nodeLine, submitTask, timing, waitUntil } from '../task/shared.js';
import { vnfsExists } from '../../vnfs/index.js';
import { ReloadProgress } from './progress.js';

export interface ReloadFlags extends FanOutFlags {
  wait?: boolean;
  waitTimeout?: string;
  interval?: string;
}

export function register(program: Command): void {
  reloadOptions(
    program.command('reload <pattern...>').description('reprovision nodes: boot device pxe, power cycle, and (--wait) follow them until ready on their VNFS'),
  ).action(async (patterns: string[], flags: ReloadFlags, cmd: Command) => reloadNodes(cmd, patterns, flags, null));
}

/** The options `reload` and `node deploy` share. */
export function reloadOptions(command: Command): Command {
  return fanOutOptions(
    command
      .option('-w, --wait', 'wait until every node is ready on its assigned VNFS, showing progress')
      .option('--wait-timeout <seconds>', 'how long --wait waits (default: config node.timeout)')
      .option('--interval <seconds>', 'how often --wait polls the registry', '1'),
  );
}

/**
 * Runs a reload task, or with `vnfs` a deploy task (each node's VNFS set first), on the nodes the
 * patterns name: prints each node's power step, then with --wait follows them until ready.
 */
export async function reloadNodes(cmd: Command, patterns: string[], flags: ReloadFlags, vnfs: string | null): Promise<void> {
  const verb = vnfs === null ? 'reload' : 'node deploy';
  const ctx = cliContext(cmd);
  const config = ctx.config();
  const logger = commandLogger(config, flags.verbose);
  const waitTimeout = flags.waitTimeout === undefined ? config.node.timeout : Number(flags.waitTimeout);
  const interval = Number(flags.interval);
  if (!(waitTimeout > 0)) throw new UsageError(`--wait-timeout ${JSON.stringify(flags.waitTimeout)}: expected seconds > 0`);
  if (!(interval > 0)) throw new UsageError(`--interval ${JSON.stringify(flags.interval)}: expected seconds > 0`);
  if (vnfs !== null && !vnfsExists(config.statedir, vnfs)) throw new UsageError(`node deploy: no VNFS ${JSON.stringify(vnfs)} (vnfs list shows them)`);
  await withRegistry(ctx, logger, async (registry) => {
    const nodes = await selectNodes(registry, config, patterns);
    if (flags.dryRun) {
      const set = vnfs === null ? '' : `vnfs set to ${vnfs}; then `;
      return printLines(ctx.out, dryRunLines(nodes, config, (d) => `${set}${d.describe('bootdev', 'pxe', flags.showPasswords)}; then ${d.describe('cycle', undefined, flags.showPasswords)} (or on, when off)`));
    }
    const runner = cliRunner(registry, config, logger);
    let release = () => {};
    try {
      const params = { nodes: patterns, ...(vnfs === null ? {} : { vnfs }), timeout: waitTimeout, interval, ...fanOutParams(config, flags) };
      const task = await submitTask(runner, ctx.err, { action: vnfs === null ? 'reload' : 'deploy', params });
      release = interruptCancels(runner, task.id, ctx.err);
      // The power step of every node first, as one block of lines.
      const powered = await waitUntil(runner, task.id, (t) => t.nodes.every((n) => isFinished(n.status) || passedPower(n)));
      printLines(ctx.out, powered.nodes.map((n) => [n.node, powerLine(n)]));
      let failed = powered.nodes.filter((n) => !passedPower(n)).length;
      if (flags.wait) {
        const waiting = powered.nodes.filter((n) => passedPower(n)).map((n) => n.node);
        failed += await follow(runner, registry, task.id, waiting, { start: powered.started ?? Date.now(), intervalMs: interval * 1000, out: ctx.out });
      }
      if (failed) {
        ctx.err.write(`provisiond: ${verb}: ${failed} of ${powered.nodes.length} node${powered.nodes.length === 1 ? '' : 's'} did not ${flags.wait ? 'come back ready' : 'start'}\n`);
        process.exitCode = 1;
      }
    } finally {
      release();
      // Without --wait the task goes on waiting for ready in the daemon (it takes over tasks whose runner is gone).
      await runner.close();
    }
  });
}

/** The line of a node's power step: what was done, or why it failed. */
function powerLine(n: TaskNode): string {
  const done = n.messages.find((m) => !m.error && POWERED.test(m.message));
  if (done) return `${done.message} ${timing(n, done)}`;
  return nodeLine(n, 'ok');
}

/**
 * Shows the nodes' progress until the task ends: the latest boot stage of each (from its timeline),
 * and a line per node as it comes back ready, fails or times out. Returns how many did not come back.
 */
async function follow(
  runner: TaskRunner,
  registry: RegistryStore,
  id: string,
  names: readonly string[],
  o: { start: number; intervalMs: number; out: NodeJS.WritableStream & { isTTY?: boolean } },
): Promise<number> {
  const progress = new ReloadProgress(o.out, names, o.start);
  const nodeids = new Map((await Promise.all(names.map((n) => registry.getNode(n)))).filter((r) => r !== null).map((r) => [r.name, r.nodeid]));
  const pending = new Set(names);
  let failed = 0;
  for (;;) {
    const task = await runner.get(id);
    if (!task) break;
    for (const name of pending) {
      const n = task.nodes.find((x) => x.node === name)!;
      const nodeid = nodeids.get(name);
      if (nodeid) {
        const last = (await registry.listEvents(nodeid, { since: o.start })).filter((e) => e.source !== 'power').at(-1);
        if (last) progress.stage(name, last.ok ? last.stage : `${last.stage}: ${last.msg ?? 'failed'}`);
      }
      if (!isFinished(n.status)) continue;
      pending.delete(name);
      const msg = n.messages.at(-1)?.message ?? n.status;
      if (n.result === 'success') progress.done(name, msg);
      else {
        failed++;
        progress.done(name, msg.startsWith('timed out') ? `TIMED OUT (last: ${progress.lastStage(name) ?? 'no sign of life'})` : `FAILED: ${msg}`, false);
      }
    }
    progress.render();
    if (pending.size === 0 || isFinished(task.status)) break;
    await new Promise((r) => setTimeout(r, o.intervalMs));
  }
  progress.finish();
  return failed;
}
