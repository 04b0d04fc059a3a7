/**
 * `provisiond node bootdev pxe|disk <PATTERN...> [--persistent]`: the boot device the nodes' BMCs
 * use at the next boot (or every boot with --persistent), through each node's power driver.
 */
import type { Command } from 'commander';
import { cliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';
import type { BootDevice } from '../../power/types.js';
import { commandLogger, dryRunLines, fanOutOptions, fanOutSettings, printLines, resultText, runOnNodes, selectNodes, withRegistry, type FanOutFlags } from '../power/common.js';

/** Adds the `bootdev` verb to the `node` noun. */
export function registerBootdev(node: Command): void {
  fanOutOptions(
    node
      .command('bootdev <device> <pattern...>')
      .description('set the boot device of the nodes through their power driver: pxe (network) or disk')
      .option('--persistent', 'for every boot, not only the next one'),
  ).action(async (device: string, patterns: string[], flags: FanOutFlags & { persistent?: boolean }, cmd: Command) => {
    if (device !== 'pxe' && device !== 'disk') throw new UsageError(`node bootdev: device ${JSON.stringify(device)}: use pxe or disk`);
    const ctx = cliContext(cmd);
    const config = ctx.config();
    const logger = commandLogger(config, flags.verbose);
    const persistent = Boolean(flags.persistent);
    const detail = persistent ? `${device} persistent` : device;
    await withRegistry(ctx, logger, async (registry) => {
      const nodes = await selectNodes(registry, config, patterns);
      if (flags.dryRun) return printLines(ctx.out, dryRunLines(nodes, config, (d) => d.describe('bootdev', detail, flags.showPasswords)));
      const results = await runOnNodes(nodes, config, fanOutSettings(config, flags), async (driver, n, signal) => {
        logger.debug({ node: n.name, run: driver.describe('bootdev', detail) }, 'bootdev');
        await driver.bootdev(device as BootDevice, persistent, { signal });
        return `boot device ${detail}`;
      });
      printLines(ctx.out, results.map((r) => [r.name, resultText(r, String)]));
      const failed = results.filter((r) => !r.ok).length;
      if (failed) {
        ctx.err.write(`provisiond: node bootdev: ${failed} of ${results.length} node${results.length === 1 ? '' : 's'} failed\n`);
        process.exitCode = 1;
      }
    });
  });
}
