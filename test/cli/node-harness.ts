/**
 * Runs the provisiond CLI in-process against a temporary statedir, capturing what it prints, and
 * gives direct access to the same database to check it before and after.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { silentLogger } from '../../src/log/logger.js';
import { SqliteRegistry } from '../../src/registry/sqlite/registry.js';

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export interface CliEnv {
  dir: string;
  config: string;
  db: string;
  /** Runs `provisiond --config CONFIG ...args`; `tty` makes stdout look like a terminal. */
  run(args: string[], options?: { tty?: boolean }): Promise<CliResult>;
  /** Opens the registry directly (closed at teardown). */
  registry(): SqliteRegistry;
}

export function cliEnv(t: { teardown(fn: () => unknown): void }, configText = ''): CliEnv {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-cli-'));
  const config = join(dir, 'provisiond.yaml');
  writeFileSync(config, `statedir: ${dir}\n${configText}`);
  const opened: SqliteRegistry[] = [];
  t.teardown(async () => {
    for (const r of opened) await r.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    config,
    db: join(dir, 'var', 'provisiond.db'),
    run: (args, options) => runCli(['--config', config, ...args], options),
    registry() {
      const r = SqliteRegistry.open({ path: join(dir, 'var', 'provisiond.db'), logger: silentLogger() });
      opened.push(r);
      return r;
    },
  };
}

/** Runs main() with stdout/stderr captured (one at a time: tap runs a file's tests in order). */
export async function runCli(argv: string[], { tty = false } = {}): Promise<CliResult> {
  let out = '';
  let err = '';
  const stdout = process.stdout as NodeJS.WriteStream & { isTTY: boolean };
  const saved = { out: stdout.write, err: process.stderr.write, tty: stdout.isTTY, exitCode: process.exitCode };
  stdout.write = ((chunk: string | Uint8Array) => ((out += String(chunk)), true)) as typeof stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((err += String(chunk)), true)) as typeof process.stderr.write;
  stdout.isTTY = tty;
  process.exitCode = undefined;
  try {
    const code = await main(argv);
    return { code, out, err };
  } finally {
    stdout.write = saved.out;
    process.stderr.write = saved.err;
    stdout.isTTY = saved.tty;
    process.exitCode = saved.exitCode;
  }
}
