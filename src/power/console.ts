/**
 * Consoles as the CLI and (later) the web UI use them: a driver's console session whose output is
 * also appended to `<statedir>/var/log/console/<NODE>.log` while it is open (as goconserver does for
 * xCAT), and the ssh-style escape filter that lets a terminal detach with `~.`.
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { assertPlainName } from '../util/names.js';
import type { ConsoleSession, PowerDriver } from './types.js';

/** Where a node's console log goes. */
export function consoleLogPath(statedir: string, node: string): string {
  return join(statedir, 'var', 'log', 'console', `${assertPlainName(node, 'node name')}.log`);
}

/** Opens the driver's console and tees what the node prints into its log file. */
export async function openLoggedConsole(driver: PowerDriver, node: string, statedir: string, who = 'provisiond'): Promise<ConsoleSession & { logFile: string }> {
  const logFile = consoleLogPath(statedir, node);
  mkdirSync(join(statedir, 'var', 'log', 'console'), { recursive: true });
  const session = await driver.console();
  const log = createWriteStream(logFile, { flags: 'a' });
  log.write(`\n--- ${new Date().toISOString()} console opened by ${who} via ${session.via} ---\n`);
  session.stream.on('data', (d: Buffer) => log.write(d));
  let ended = false;
  const endLog = () => {
    if (ended) return;
    ended = true;
    log.end(`\n--- ${new Date().toISOString()} console closed ---\n`);
  };
  session.stream.once('close', endLog);
  session.stream.once('end', endLog);
  return {
    ...session,
    logFile,
    async close() {
      await session.close();
      endLog();
      await new Promise<void>((r) => (log.closed ? r() : log.once('close', () => r())));
    },
  };
}

/**
 * The `~.` escape of ssh and ipmitool: a `~` typed at the start of a line is held; `~.` detaches,
 * `~~` sends one `~`, `~` followed by anything else sends both.
 */
export class EscapeFilter {
  #lineStart = true;
  #tilde = false;

  /** Returns the bytes to send on, and whether the user asked to detach. */
  feed(input: Buffer): { forward: Buffer; detach: boolean } {
    const out: number[] = [];
    for (const b of input) {
      if (this.#tilde) {
        this.#tilde = false;
        if (b === 0x2e) return { forward: Buffer.from(out), detach: true };
        if (b !== 0x7e) out.push(0x7e);
        out.push(b);
        this.#lineStart = b === 0x0d || b === 0x0a;
        continue;
      }
      if (this.#lineStart && b === 0x7e) {
        this.#tilde = true;
        continue;
      }
      out.push(b);
      this.#lineStart = b === 0x0d || b === 0x0a;
    }
    return { forward: Buffer.from(out), detach: false };
  }
}
