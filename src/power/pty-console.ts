/**
 * A console program (ipmitool sol activate, a site's exec `console`) run in a pseudo-terminal and
 * seen as a duplex byte stream: what it prints comes out, what is written goes to its terminal.
 * Programs like ipmitool insist on a tty for SOL (raw mode, their own `~.` escapes), hence node-pty.
 */
import { Duplex } from 'node:stream';
import { PowerError, type ConsoleSession } from './types.js';

export interface PtyConsoleOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Shown in the banner. */
  via: string;
  /** Run after the program has gone (e.g. `sol deactivate`). */
  onClose?: () => Promise<void>;
  cols?: number;
  rows?: number;
  /**
   * The console is open once the program prints `marker` (ipmitool's `SOL Session operational`);
   * a program that exits before (the BMC refused) or stays silent for `timeoutMs` fails the
   * open with what it printed. Without it, the console is open once the program runs.
   */
  ready?: { marker: string; timeoutMs: number };
}

/** What a console program printed, as a one-line message: its non-empty lines, escapes removed. */
export function printedLines(text: string, max = 300): string {
  // eslint-disable-next-line no-control-regex -- a terminal's escapes and controls are what is removed
  const plain = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '\n');
  const lines = plain.split('\n').map((l) => l.trim()).filter(Boolean);
  const one = lines.join('; ');
  return one.length > max ? `...${one.slice(-max)}` : one;
}

/** Spawns `file args` in a pty and returns its console session. */
export async function ptyConsole(file: string, args: string[], options: PtyConsoleOptions): Promise<ConsoleSession> {
  const { env = process.env, cwd, via, onClose, cols = 80, rows = 24, ready } = options;
  // Loaded when a console opens: the native module costs every other command's start-up otherwise.
  const { default: pty } = await import('node-pty');
  const child = pty.spawn(file, args, {
    name: 'xterm',
    cols,
    rows,
    cwd: cwd ?? process.cwd(),
    env: env as Record<string, string>,
    // Bytes, not decoded text: a console may carry anything.
    encoding: null as unknown as string,
  });
  let exited = false;
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      if (!exited) child.write(chunk);
      cb();
    },
    final(cb) {
      cb();
    },
  });
  child.onData((d: string | Buffer) => stream.push(typeof d === 'string' ? Buffer.from(d) : d));
  const gone = new Promise<void>((resolve) => {
    child.onExit(() => {
      exited = true;
      stream.push(null);
      resolve();
    });
  });
  let closing: Promise<void> | null = null;
  if (ready) {
    let printed = '';
    const outcome = await new Promise<'timeout' | 'exited' | null>((resolve) => {
      // (Called from the callbacks below only, once both exist.)
      const done = (why: 'timeout' | 'exited' | null) => {
        clearTimeout(timer);
        watch.dispose();
        resolve(why);
      };
      const watch = child.onData((d: string | Buffer) => {
        printed = (printed + d.toString()).slice(-4096);
        if (printed.includes(ready.marker)) done(null);
      });
      const timer = setTimeout(() => done('timeout'), ready.timeoutMs);
      // node-pty may report the exit before the last output: give that a moment to arrive.
      void gone.then(() => setTimeout(() => done(printed.includes(ready.marker) ? null : 'exited'), 100));
    });
    if (outcome !== null) {
      if (!exited) child.kill('SIGKILL');
      await gone;
      stream.destroy();
      await onClose?.();
      const said = printedLines(printed);
      const why = outcome === 'exited' ? said || 'the program exited without a word' : `no answer within ${Math.round(ready.timeoutMs / 1000)} s${said ? ` (${said})` : ''}`;
      throw new PowerError(`${via}: ${why}`);
    }
  }
  return {
    stream,
    via,
    resize(c: number, r: number) {
      // A program that has gone has no terminal left to resize (node-pty throws then).
      if (!exited) child.resize(c, r);
    },
    close() {
      closing ??= (async () => {
        if (!exited) {
          child.kill('SIGTERM');
          const t = setTimeout(() => !exited && child.kill('SIGKILL'), 2000);
          await gone;
          clearTimeout(t);
        }
        await onClose?.();
        stream.destroy();
      })();
      return closing;
    },
  };
}
