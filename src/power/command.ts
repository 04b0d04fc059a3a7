/**
 * Running a driver's program (ipmitool, a site's exec script): direct exec, no shell string, its own
 * process group so that a cancelled call kills everything it started (a hung script's children
 * too): SIGTERM, then SIGKILL after a grace period.
 */
import { spawn } from 'node:child_process';
import { PowerError } from './types.js';
import { maskSecrets } from './settings.js';

export interface CommandResult {
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  signal?: AbortSignal;
  /** Milliseconds between SIGTERM and SIGKILL when cancelled. */
  killGrace?: number;
  /** Printed in errors instead of the program path (`ipmitool chassis power on`). */
  label: string;
  /** Masked out of any message that ends up in an error. */
  secrets?: ReadonlyArray<string | null | undefined>;
  /** Largest output kept, per stream (a runaway program cannot eat the master's memory). */
  maxOutput?: number;
}

/**
 * Runs `file args`; resolves with its output when it exits 0. A non-zero exit rejects with a
 * PowerError whose message is the program's stderr (or stdout), secrets masked. Cancellation through
 * `signal` kills the process group and rejects with the signal's reason.
 */
export function runCommand(file: string, args: string[], options: CommandOptions): Promise<CommandResult> {
  const { env, cwd, signal, killGrace = 2000, label, secrets = [], maxOutput = 1 << 20 } = options;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal, label));
    const child = spawn(file, args, { env, cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    child.stdout.on('data', (b: Buffer) => {
      if (outLen < maxOutput) out.push(b);
      outLen += b.length;
    });
    child.stderr.on('data', (b: Buffer) => {
      if (errLen < maxOutput) err.push(b);
      errLen += b.length;
    });
    let killTimer: NodeJS.Timeout | undefined;
    let aborted = false;
    const kill = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {}
    };
    const onAbort = () => {
      aborted = true;
      kill('SIGTERM');
      killTimer = setTimeout(() => kill('SIGKILL'), killGrace);
      killTimer.unref();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new PowerError(`${label}: cannot run ${file}: ${e.code ?? e.message}`, { cause: e }));
    });
    child.on('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      // Whatever the program left behind in its group goes too (a backgrounded `sleep`).
      kill('SIGKILL');
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (aborted && signal) return reject(abortReason(signal, label));
      if (code === 0) return resolve({ stdout, stderr });
      const said = (stderr.trim() || stdout.trim()).split('\n').filter(Boolean).slice(-3).join('; ');
      const how = code !== null ? `exit ${code}` : `killed by ${sig}`;
      reject(new PowerError(maskSecrets(`${label}: ${how}${said ? `: ${said}` : ''}`, secrets)));
    });
  });
}

function abortReason(signal: AbortSignal, label: string): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error && r.name === 'TimeoutError') return new PowerError(`${label}: timed out`, { cause: r });
  if (r instanceof Error) return new PowerError(`${label}: ${r.message}`, { cause: r });
  return new PowerError(`${label}: cancelled`);
}
