/**
 * `provisiond reload <PATTERN...> [--wait]`: Apache VCL's `load` — set the next boot to PXE, power
 * cycle (or power on a node that is off), and with --wait follow the nodes through their boot until
 * each reaches `ready` on its assigned VNFS or the wait times out. Progress comes from the registry
 * (state and last contact written by the HTTP service) and the node's boot timeline.
 */
import type { Command } from 'commander';
import { cliContext } from '../context.js';
import { UnsupportedVerbError } from '../../power/types.js';
import { nodeVerdict } from '../../power/verdict.js';
import { UsageError } from '../../util/errors.js';
import type { RegistryStore, ResolvedNode } from '../../registry/types.js';
import { commandLogger, dryRunLines, fanOutOptions, fanOutSettings, printLines, resultText, runOnNodes, selectNodes, withRegistry, type FanOutFlags } from '../power/common.js';
import { ReloadProgress } from './progress.js';

interface ReloadFlags extends FanOutFlags {
  wait?: boolean;
  waitTimeout?: string;
  interval?: string;
}

export function register(program: Command): void {
  fanOutOptions(
    program
      .command('reload <pattern...>')
      .description('reprovision nodes: boot device pxe, power cycle, and (--wait) follow them until ready on their VNFS')
      .option('-w, --wait', 'wait until every node is ready on its assigned VNFS, showing progress')
      .option('--wait-timeout <seconds>', 'how long --wait waits (default: config node.timeout)')
      .option('--interval <seconds>', 'how often --wait polls the registry', '1'),
  ).action(async (patterns: string[], flags: ReloadFlags, cmd: Command) => {
    const ctx = cliContext(cmd);
    const config = ctx.config();
    const logger = commandLogger(config, flags.verbose);
    const waitTimeout = flags.waitTimeout === undefined ? config.node.timeout : Number(flags.waitTimeout);
    const interval = Number(flags.interval);
    if (!(waitTimeout > 0)) throw new UsageError(`--wait-timeout ${JSON.stringify(flags.waitTimeout)}: expected seconds > 0`);
    if (!(interval > 0)) throw new UsageError(`--interval ${JSON.stringify(flags.interval)}: expected seconds > 0`);
    await withRegistry(ctx, logger, async (registry) => {
      const nodes = await selectNodes(registry, config, patterns);
      if (flags.dryRun) {
        return printLines(ctx.out, dryRunLines(nodes, config, (d) => `${d.describe('bootdev', 'pxe', flags.showPasswords)}; then ${d.describe('cycle', undefined, flags.showPasswords)} (or on, when off)`));
      }
      const start = Date.now();
      const results = await runOnNodes(nodes, config, fanOutSettings(config, flags), async (driver, node, signal) => {
        let note = '';
        try {
          await driver.bootdev('pxe', false, { signal });
        } catch (err) {
          if (!(err instanceof UnsupportedVerbError)) throw err;
          note = ' (boot device left as is: the driver cannot set it)';
        }
        const state = await driver.status({ signal }).catch(() => 'unknown' as const);
        await driver.power(state === 'off' ? 'on' : 'cycle', { signal });
        logger.info({ node: node.name }, 'reload started');
        return `${state === 'off' ? 'powered on' : 'power cycled'} to boot pxe${note}`;
      });
      for (const r of results) {
        const n = nodes.find((x) => x.name === r.name)!;
        await registry.addEvent({ time: Date.now(), nodeid: n.nodeid, source: 'power', stage: 'reload', msg: r.ok ? null : (r.error ?? null), ok: r.ok }).catch(() => {});
      }
      printLines(ctx.out, results.map((r) => [r.name, resultText(r, String)]));
      let failed = results.filter((r) => !r.ok).length;
      if (flags.wait) {
        const started = nodes.filter((n) => results.find((r) => r.name === n.name)?.ok);
        failed += await waitReady(registry, started, { start, timeoutMs: waitTimeout * 1000, intervalMs: interval * 1000, nodeTimeout: config.node.timeout, out: ctx.out });
      }
      if (failed) {
        ctx.err.write(`provisiond: reload: ${failed} of ${nodes.length} node${nodes.length === 1 ? '' : 's'} did not ${flags.wait ? 'come back ready' : 'start'}\n`);
        process.exitCode = 1;
      }
    });
  });
}

/** Polls until every node is READY with a contact after `start`; returns how many never got there. */
async function waitReady(
  registry: RegistryStore,
  nodes: readonly ResolvedNode[],
  o: { start: number; timeoutMs: number; intervalMs: number; nodeTimeout: number; out: NodeJS.WritableStream & { isTTY?: boolean } },
): Promise<number> {
  const progress = new ReloadProgress(o.out, nodes.map((n) => n.name), o.start);
  const pending = new Map(nodes.map((n) => [n.name, n]));
  const deadline = o.start + o.timeoutMs;
  while (pending.size > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, o.intervalMs));
    for (const [name, was] of pending) {
      const rec = await registry.getNode(name);
      if (!rec) continue;
      const events = await registry.listEvents(rec.nodeid, { since: o.start });
      const last = events.filter((e) => e.source !== 'power').at(-1);
      if (last) progress.stage(name, last.ok ? last.stage : `${last.stage}: ${last.msg ?? 'failed'}`);
      const fresh = rec.lastcontact !== null && rec.lastcontact >= o.start;
      const v = nodeVerdict({ node: { ...was, state: rec.state, lastcontact: rec.lastcontact }, now: Date.now(), timeout: o.nodeTimeout });
      if (fresh && v.verdict === 'READY') {
        progress.done(name, `ready on ${was.vnfs}`);
        pending.delete(name);
      }
    }
    progress.render();
  }
  for (const name of pending.keys()) progress.done(name, `TIMED OUT (last: ${progress.lastStage(name) ?? 'no sign of life'})`, false);
  progress.finish();
  return pending.size;
}
