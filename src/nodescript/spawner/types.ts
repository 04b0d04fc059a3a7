/**
 * How the engine starts a script process. One implementation, `process-spawner`: a small long-lived
 * spawner process forks and execs, so the event loop never blocks in fork. Tests and the engine see
 * only this interface.
 */

export interface SpawnJob {
  /** The script, executed directly (its shebang honoured, no shell string). */
  path: string;
  cwd: string;
  /** The whole environment (the process gets nothing else). */
  env: Record<string, string>;
}

export interface JobHandlers {
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
  /** Once, after the process exited and its output pipes closed. `error` when it could not be started. */
  exit(result: { code: number | null; signal: string | null; error?: string }): void;
}

export interface JobHandle {
  /** Signals the job's whole process group (it runs in a session of its own). */
  kill(signal: 'SIGTERM' | 'SIGKILL'): void;
}

export interface Spawner {
  start(job: SpawnJob, handlers: JobHandlers): JobHandle;
  /** Kills what still runs and frees the spawner. */
  close(): Promise<void>;
}
