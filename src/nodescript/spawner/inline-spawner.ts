/**
 * Spawning with child_process from the calling thread. Simple, but fork/exec blocks the event loop
 * (each spawn waits for the child's exec), which caps a boot storm at a few hundred scripts per second.
 */
import { spawn } from 'node:child_process';
import type { JobHandle, JobHandlers, SpawnJob, Spawner } from './types.js';

export class InlineSpawner implements Spawner {
  #children = new Set<number>();

  start(job: SpawnJob, h: JobHandlers): JobHandle {
    // detached: the script leads its own process group, so a timeout kills its children too.
    const child = spawn(job.path, [], { cwd: job.cwd, env: job.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let failed: string | undefined;
    const pid = child.pid;
    if (pid !== undefined) this.#children.add(pid);
    child.stdout.on('data', (b: Buffer) => h.stdout(b));
    child.stderr.on('data', (b: Buffer) => h.stderr(b));
    child.on('error', (err) => {
      failed = `cannot execute: ${(err as NodeJS.ErrnoException).code ?? err.message}`;
    });
    child.on('close', (code, signal) => {
      if (pid !== undefined) this.#children.delete(pid);
      h.exit(failed ? { code: null, signal: null, error: failed } : { code, signal });
    });
    return {
      kill: (signal) => {
        if (pid === undefined) return;
        try {
          process.kill(-pid, signal);
        } catch {}
      },
    };
  }

  async close(): Promise<void> {
    for (const pid of this.#children) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {}
    }
  }
}
