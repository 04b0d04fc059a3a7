/**
 * What the commands that run or read tasks share: a runner in the CLI process (so `power`,
 * `reload` and `vnfs image` are tasks in the registry, visible to the API), who the caller is, and
 * how a node's part reads on one line.
 */
import { userInfo } from 'node:os';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import type { RegistryStore, TaskNode, TaskRecord } from '../../registry/types.js';
import { TaskRunner, type TaskRequest } from '../../tasks/index.js';

/** `cli:USER`: who asked, as the task records it. */
export function cliCaller(): string {
  let user = process.env.SUDO_USER || process.env.USER || '';
  try {
    user ||= userInfo().username;
  } catch {
    user ||= String(process.getuid?.() ?? 'unknown');
  }
  return `cli:${user}`;
}

export function cliRunner(registry: RegistryStore, config: Config, log: Logger): TaskRunner {
  return new TaskRunner({ registry, config: () => config, log });
}

/** Submits the task, says its id on stderr (`task ID`), returns it. */
export async function submitTask(runner: TaskRunner, err: NodeJS.WritableStream, req: Omit<TaskRequest, 'createdBy'>): Promise<TaskRecord> {
  const { task } = await runner.submit({ ...req, createdBy: cliCaller() });
  err.write(`task ${task.id}\n`);
  return task;
}

/**
 * Until the returned function is called, Ctrl-C cancels the task (its driver calls are aborted, it
 * ends terminated, the command prints how each node ended); a second Ctrl-C exits at once.
 */
export function interruptCancels(runner: TaskRunner, id: string, err: NodeJS.WritableStream): () => void {
  let asked = false;
  const onInterrupt = () => {
    if (asked) process.exit(130);
    asked = true;
    err.write(`provisiond: cancelling task ${id} (Ctrl-C again to leave it as it is)\n`);
    void runner.cancel(id, cliCaller()).catch(() => {});
  };
  process.on('SIGINT', onInterrupt);
  return () => process.off('SIGINT', onInterrupt);
}

/** Waits until `done(task)` holds (or the task ended), looking at the runner's changes. */
export async function waitUntil(runner: TaskRunner, id: string, done: (t: TaskRecord) => boolean): Promise<TaskRecord> {
  let hit: TaskRecord | null = null;
  const ac = new AbortController();
  const last = await runner
    .wait(id, {
      signal: ac.signal,
      onProgress: (t) => {
        if (!hit && done(t)) {
          hit = t;
          ac.abort();
        }
      },
    })
    .catch((err: unknown) => {
      if (hit) return hit;
      throw err;
    });
  return hit ?? last;
}

/** `(1.2s)` or `(1.2s, 2 attempts)`: from the node's first message to `until` (its last by default). */
export function timing(n: TaskNode, until = n.messages.at(-1)): string {
  const first = n.messages[0];
  const secs = first && until ? (until.ts - first.ts) / 1000 : 0;
  const attempts = 1 + n.messages.filter((m) => /^attempt \d+$/.test(m.message) && (!until || m.ts <= until.ts)).length;
  return `(${secs.toFixed(1)}s${attempts > 1 ? `, ${attempts} attempts` : ''})`;
}

/** A finished node's line: `TEXT (1.2s)`, or `FAILED: ERROR (1.2s)`. */
export function nodeLine(n: TaskNode, okText: string): string {
  const last = n.messages.at(-1);
  return n.result === 'success' ? `${okText} ${timing(n)}` : `FAILED: ${last?.message ?? n.status} ${timing(n)}`;
}
