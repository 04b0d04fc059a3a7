/**
 * Running one master-side script (the caller holds a slot of the global limiter): the process through the spawner,
 * its stdout streamed out byte for byte (cut at maxOutput), its stderr logged line by line, and the
 * timeout enforced on its whole process group (SIGTERM, then SIGKILL 2 s later).
 */
import type { Logger } from '../log/logger.js';
import type { JobHandle, Spawner } from './spawner/types.js';
import type { PlanEntry, ScriptResult } from './types.js';

export const KILL_GRACE_MS = 2000;
const MAX_LOG_LINE = 4096;

export interface RunContext {
  spawner: Spawner;
  statedir: string;
  timeoutMs: number;
  maxOutput: number;
  log: Logger;
  /** Counts processes started and not yet exited. */
  running: { n: number };
}

/** Runs `entry`, calling `write` with each chunk of its stdout; resolves when it ended, whatever the outcome. */
export async function runScript(
  ctx: RunContext,
  entry: PlanEntry,
  env: Record<string, string>,
  write: (chunk: Buffer) => void,
  signal: AbortSignal,
): Promise<ScriptResult> {
  const started = performance.now();
  const log = ctx.log.child({ script: entry.name, dir: entry.dir });
  return new Promise<ScriptResult>((resolve) => {
    let bytes = 0;
    let truncated = false;
    let timedOut = false;
    let handle: JobHandle | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let stderrTail = '';
    const terminate = () => {
      if (killTimer || !handle) return;
      handle.kill('SIGTERM');
      killTimer = setTimeout(() => handle?.kill('SIGKILL'), KILL_GRACE_MS);
    };
    const onAbort = () => terminate();
    const timer = setTimeout(() => {
      timedOut = true;
      terminate();
    }, ctx.timeoutMs);
    const logStderr = (text: string, flush: boolean) => {
      const lines = (stderrTail + text).split('\n');
      stderrTail = flush ? '' : lines.pop()!;
      if (stderrTail.length > MAX_LOG_LINE) {
        lines.push(stderrTail);
        stderrTail = '';
      }
      for (const line of lines) if (line.length > 0) log.info({ stream: 'stderr' }, line.slice(0, MAX_LOG_LINE));
    };
    const finish = (code: number | null, sig: string | null, error?: string) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      signal.removeEventListener('abort', onAbort);
      ctx.running.n--;
      if (stderrTail) logStderr('', true);
      const durationMs = Math.round(performance.now() - started);
      let reason: string | undefined;
      if (error) reason = error;
      else if (timedOut) reason = `timed out after ${ctx.timeoutMs / 1000} s`;
      else if (truncated) reason = `output over ${ctx.maxOutput} bytes, cut`;
      else if (sig) reason = `killed by ${sig}`;
      else if (code !== 0) reason = `exit ${code}`;
      const result: ScriptResult = {
        name: entry.name, folder: entry.folder, dir: entry.dir, kind: 'master', exitCode: code, signal: sig,
        timedOut, truncated, durationMs, bytes, ok: reason === undefined, reason,
      };
      const fields = { exitCode: code, signal: sig, durationMs, bytes };
      if (reason && !signal.aborted) log.error(fields, `nodescript ${entry.name} failed on the master: ${reason}`);
      else log.debug(fields, `nodescript ${entry.name} finished`);
      resolve(result);
    };
    ctx.running.n++;
    try {
      handle = ctx.spawner.start({ path: entry.path, cwd: ctx.statedir, env }, {
        stdout: (chunk) => {
          if (truncated) return;
          if (bytes + chunk.length > ctx.maxOutput) {
            chunk = chunk.subarray(0, ctx.maxOutput - bytes);
            truncated = true;
            terminate();
          }
          bytes += chunk.length;
          if (chunk.length > 0) write(chunk);
        },
        stderr: (chunk) => logStderr(chunk.toString(), false),
        exit: ({ code, signal: sig, error }) => finish(code, sig, error),
      });
    } catch (err) {
      finish(null, null, `cannot execute: ${(err as Error).message}`);
      return;
    }
    if (signal.aborted) terminate();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}
