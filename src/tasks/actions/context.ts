/**
 * What an action gets from the runner while it runs one task: the live record to update, the
 * registry and config, a signal that fires on cancel (or when the runner closes), and `changed()`
 * to persist the record (committed before anyone is told).
 */
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../log/logger.js';
import { fanOut, type FanOutResult } from '../../power/fanout.js';
import type { PowerDriver } from '../../power/types.js';
import type { RegistryStore, ResolvedNode, TaskNode, TaskRecord, TimelineEvent } from '../../registry/types.js';
import { ProvisiondError } from '../../util/errors.js';
import { driverFor, resolveNames } from '../nodes.js';
import type { FanOutParams, TaskParams } from '../params.js';
import { addMessage, finishNode, isFinished } from '../record.js';
import type { NodeActionBoard } from '../node-actions.js';

export interface RunContext<P extends TaskParams = TaskParams> {
  task: TaskRecord;
  params: P;
  registry: RegistryStore;
  config: Config;
  log: Logger;
  /** Fires when the task is cancelled or the runner closes: waits end, driver calls are aborted. */
  signal: AbortSignal;
  /** Records a step in a node's timeline. */
  timeline(event: TimelineEvent): void | Promise<void>;
  /** Who cancelled it, once someone has. */
  cancelledBy(): string | null;
  /** Persists the record (and then tells listeners); resolves once committed. */
  changed(): Promise<void>;
  /** True when this run takes over a task another runner started. */
  resumed: boolean;
  /** Where actions for nodes' ready agents are offered; null in a runner of the CLI. */
  actions: NodeActionBoard | null;
  /**
   * Tells the servers sharing the database of an image built here; resolves (with what to tell the
   * admin) once committed. Absent in a runner of the CLI: the daemon publishes what it finds.
   */
  imageBuilt?(vnfs: string): Promise<string>;
}

export type Action<P extends TaskParams = TaskParams> = (ctx: RunContext<P>) => Promise<void>;

/** Thrown into a node's work once the task is cancelled: the node ends terminated, not failed. */
export class TaskCancelledError extends ProvisiondError {}

/** Ends the node terminated when the task was cancelled, else as `how`. */
export function endNode(ctx: RunContext, node: TaskNode, how: 'success' | 'failure', message: string): void {
  const by = ctx.cancelledBy();
  if (how === 'failure' && by !== null) finishNode(ctx.task, node, 'terminated', `cancelled by ${by}: ${message}`);
  else finishNode(ctx.task, node, how, message);
}

/**
 * Runs `work` on each of the task's unfinished nodes within the fan-out settings. A node no longer
 * registered, or without a usable driver, fails alone; every attempt after the first is noted.
 */
export async function fanOutNodes<T>(
  ctx: RunContext<TaskParams & FanOutParams>,
  nodes: readonly TaskNode[],
  work: (driver: PowerDriver, node: ResolvedNode, tn: TaskNode, signal: AbortSignal) => Promise<T>,
  onEnd: (tn: TaskNode, r: FanOutResult<T>, node: ResolvedNode | undefined) => Promise<void> | void,
): Promise<void> {
  const { power } = ctx.config;
  const resolved = await resolveNames(ctx.registry, ctx.config, nodes.map((n) => n.node));
  const byName = new Map(nodes.map((n) => [n.node, n]));
  const attempts = new Map<string, number>();
  const ends: Array<Promise<void>> = [];
  await fanOut(
    nodes.map((n) => ({ name: n.node })),
    async ({ name }, timeoutSignal) => {
      if (ctx.signal.aborted) throw new TaskCancelledError('cancelled before it started');
      const tn = byName.get(name)!;
      const n = (attempts.get(name) ?? 0) + 1;
      attempts.set(name, n);
      const node = resolved.get(name);
      if (!node) throw new ProvisiondError(`node ${name} is no longer registered`);
      if (n === 1) tn.status = 'running';
      else addMessage(ctx.task, tn, `attempt ${n}`);
      return work(driverFor(node, ctx.config), node, tn, AbortSignal.any([timeoutSignal, ctx.signal]));
    },
    {
      concurrency: ctx.params.concurrency ?? power.concurrency,
      timeout: ctx.params.callTimeout ?? power.timeout,
      retries: ctx.params.retries ?? power.retries,
      onResult: (r) => {
        const tn = byName.get(r.name)!;
        ends.push(Promise.resolve(onEnd(tn, r as FanOutResult<T>, resolved.get(r.name))).then(() => ctx.changed()));
      },
    },
  );
  await Promise.all(ends);
}

/** Unfinished nodes of the task. */
export function pending(task: TaskRecord): TaskNode[] {
  return task.nodes.filter((n) => !isFinished(n.status));
}
