/**
 * What the power, bootdev, reload and console commands share: opening the registry, turning node
 * patterns into resolved nodes with their drivers, running a verb across them through the fan-out,
 * and printing one line per node.
 */
import type { Command } from 'commander';
import type { Config } from '../../config/schema.js';
import { createLogger, type Logger } from '../../log/logger.js';
import { openRegistry } from '../../registry/open.js';
import type { RegistryStore, ResolvedNode } from '../../registry/types.js';
import type { PowerDriver } from '../../power/index.js';
import { fanOut, type FanOutResult } from '../../power/fanout.js';
import { hasPowerDriver } from '../../power/settings.js';
import { driverFor, selectNodes } from '../../tasks/nodes.js';
import { UsageError, errorMessage } from '../../util/errors.js';
import type { CliContext } from '../context.js';

/** Options every fan-out command takes. */
export interface FanOutFlags {
  dryRun?: boolean;
  showPasswords?: boolean;
  concurrency?: string;
  timeout?: string;
  retries?: string;
  verbose?: boolean;
}

/** Adds --dry-run, --concurrency, --timeout, --retries and --verbose to a command. */
export function fanOutOptions(cmd: Command): Command {
  return cmd
    .option('-n, --dry-run', 'print what would be run for each node, run nothing (passwords shown as ****)')
    .option('--show-passwords', 'with --dry-run: show the passwords instead of ****')
    .option('--concurrency <n>', 'nodes acted on at once (default: config power.concurrency)')
    .option('--timeout <seconds>', 'time allowed per node and attempt (default: config power.timeout)')
    .option('--retries <n>', 'attempts after a failure (default: config power.retries)')
    .option('-v, --verbose', 'log each command run (passwords masked) on stderr');
}

/** The fan-out flags as a task's parameters (`concurrency`, `callTimeout`, `retries`); the config's defaults are left to the task. */
export function fanOutParams(config: Config, flags: FanOutFlags): Record<string, number> {
  const s = fanOutSettings(config, flags);
  const p: Record<string, number> = {};
  if (flags.concurrency !== undefined) p.concurrency = s.concurrency;
  if (flags.timeout !== undefined) p.callTimeout = s.timeout;
  if (flags.retries !== undefined) p.retries = s.retries;
  return p;
}

export function fanOutSettings(config: Config, flags: FanOutFlags): { concurrency: number; timeout: number; retries: number } {
  const int = (v: string | undefined, what: string, min: number, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || (what !== '--timeout' && !Number.isInteger(n))) throw new UsageError(`${what} ${JSON.stringify(v)}: expected a number >= ${min}`);
    return n;
  };
  return {
    concurrency: int(flags.concurrency, '--concurrency', 1, config.power.concurrency),
    timeout: int(flags.timeout, '--timeout', 0.001, config.power.timeout),
    retries: int(flags.retries, '--retries', 0, config.power.retries),
  };
}

/** A logger for a command: quiet unless --verbose. */
export function commandLogger(config: Config, verbose?: boolean): Logger {
  return createLogger({ level: verbose ? 'debug' : 'warn', format: config.log.format }).child({ cmd: 'power' });
}

/** Node selection and drivers live with the tasks (the API and the CLI select alike). */
export { selectNodes, driverFor };

export { hasPowerDriver };

/** Opens the registry for a command and closes it when `fn` is done. */
export async function withRegistry<T>(ctx: CliContext, logger: Logger, fn: (registry: RegistryStore, config: Config) => Promise<T>): Promise<T> {
  const config = ctx.config();
  const registry = await openRegistry(config, logger);
  try {
    return await fn(registry, config);
  } finally {
    await registry.flush().catch(() => {});
    await registry.close();
  }
}

/** Runs `work` with each node's driver across the nodes; a node without a usable driver fails alone. */
export function runOnNodes<T>(
  nodes: readonly ResolvedNode[],
  config: Config,
  settings: { concurrency: number; timeout: number; retries: number },
  work: (driver: PowerDriver, node: ResolvedNode, signal: AbortSignal) => Promise<T>,
  onResult?: (r: FanOutResult<unknown>) => void,
): Promise<Array<FanOutResult<T>>> {
  return fanOut(nodes, (node, signal) => work(driverFor(node, config), node, signal), { ...settings, onResult });
}

/** Prints `NAME  text` lines with the names aligned. */
export function printLines(out: NodeJS.WritableStream, rows: Array<[string, string]>): void {
  const w = Math.max(0, ...rows.map(([n]) => n.length));
  for (const [name, text] of rows) out.write(`${name.padEnd(w)}  ${text}\n`);
}

/** The dry-run lines: what each node's driver would run, or why it cannot. */
export function dryRunLines(nodes: readonly ResolvedNode[], config: Config, describe: (d: PowerDriver) => string): Array<[string, string]> {
  return nodes.map((node) => {
    try {
      return [node.name, describe(driverFor(node, config))];
    } catch (err) {
      return [node.name, `error: ${errorMessage(err)}`];
    }
  });
}

/** One line's text for a finished node. */
export function resultText<T>(r: FanOutResult<T>, okText: (v: T) => string): string {
  const secs = `${(r.ms / 1000).toFixed(1)}s${r.attempts > 1 ? `, ${r.attempts} attempts` : ''}`;
  return r.ok ? `${okText(r.value as T)} (${secs})` : `FAILED: ${r.error} (${secs})`;
}
