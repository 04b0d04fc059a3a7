/**
 * What a command needs from the program: the config (from --config) and how to print.
 * Commands get it from `cliContext(cmd)` so that no module holds global state.
 */
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';

export interface CliContext {
  config(): Config;
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream;
}

/** The context of a running command: global options come from the root program. */
export function cliContext(cmd: Command): CliContext {
  let root = cmd;
  while (root.parent) root = root.parent;
  const opts = root.opts<{ config?: string }>();
  let cached: Config | undefined;
  return {
    config: () => (cached ??= loadConfig(opts.config)),
    out: process.stdout,
    err: process.stderr,
  };
}
