/**
 * What the node and group commands share: opening the registry named by the config. Choosing nodes
 * by pattern and parsing the values of `set` live in src/nodes/ (the API uses them too) and are
 * re-exported here for the other nouns (power, script, console).
 */
import type { Command } from 'commander';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import { openRegistry } from '../../registry/open.js';
import type { RegistryStore } from '../../registry/types.js';
import { cliContext, type CliContext } from '../context.js';

export { normalizeNodeid, selectNodes, fewNames, updateAll, deleteAll } from '../../nodes/select.js';
export { parseBool, parseDebug, parseBoot, checkVnfsExists } from '../../nodes/fields.js';

/** A logger for commands: warnings and errors as one line on stderr, the rest dropped. */
export function cliLogger(err: NodeJS.WritableStream = process.stderr): Logger {
  const line = (msg: string) => err.write(`provisiond: ${msg}\n`);
  const l: Logger = { debug() {}, info() {}, warn: (_f, msg) => line(msg), error: (_f, msg) => line(msg), child: () => l };
  return l;
}

/** Runs `fn` with the configured registry open, and closes it (flushing) whatever happens. */
export async function withRegistry<T>(cmd: Command, fn: (reg: RegistryStore, ctx: CliContext, config: Config) => Promise<T>): Promise<T> {
  const ctx = cliContext(cmd);
  const config = ctx.config();
  const reg = await openRegistry(config, cliLogger(ctx.err));
  try {
    return await fn(reg, ctx, config);
  } finally {
    await reg.close();
  }
}
