/**
 * A console program (ipmitool sol activate, a site's exec `console`) run in a pseudo-terminal and
 * seen as a duplex byte stream: what it prints comes out, what is written goes to its terminal.
 * Programs like ipmitool insist on a tty for SOL (raw mode, their own `~.` escapes), hence node-pty.
 */
import { Duplex } from 'node:stream';
import type { ConsoleSession } from './types.js';

export interface PtyConsoleOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Shown in the banner. */
  via: string;
  /** Run after the program has gone (e.g. `sol deactivate`). */
  onClose?: () => Promise<void>;
  cols?: number;
  rows?: number;
}

/** Spawns `file args` in a pty and returns its console session. */
export async function ptyConsole(file: string, args: string[], options: PtyConsoleOptions): Promise<ConsoleSession> {
  const { env = process.env, cwd, via, onClose, cols = 80, rows = 24 } = options;
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
