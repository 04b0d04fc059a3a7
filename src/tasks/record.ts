/**
 * The task record's rules, pure: a new task, a message, a node finishing, and the task's result
 * rolled up from its nodes (Drydock's: every node succeeded = success, some = partial_success,
 * none = failure; nothing decided yet = incomplete).
 */
import { randomBytes } from 'node:crypto';
import type { TaskNode, TaskRecord, TaskResult, TaskStatus } from '../registry/types.js';

/**
 * An unguessable, URL-safe task id: 96 random bits in lowercase base32 (digits and letters only, so
 * that `provisiond task show ID` never reads an id beginning with `-` as an option, and an admin can
 * read it aloud).
 */
export function newTaskId(): string {
  const bytes = randomBytes(15);
  const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += alphabet[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

export function isFinished(s: TaskStatus): boolean {
  return s === 'terminated' || s === 'complete';
}

export function newTask(o: { action: string; params: Record<string, unknown>; createdBy: string; idempotencyKey: string | null; runner: string | null; nodes: readonly string[]; now: number }): TaskRecord {
  return {
    id: newTaskId(),
    action: o.action,
    params: o.params,
    status: 'queued',
    result: 'incomplete',
    createdBy: o.createdBy,
    created: o.now,
    started: null,
    finished: null,
    progressAt: o.now,
    idempotencyKey: o.idempotencyKey,
    runner: o.runner,
    cancelRequested: null,
    messages: [],
    nodes: o.nodes.map((node) => ({ node, status: 'queued', result: 'incomplete', phase: null, progressAt: null, messages: [] })),
  };
}

/** Adds a message to the task (and to the node's own list when it is about one); marks progress. */
export function addMessage(task: TaskRecord, node: TaskNode | null, message: string, error = false, ts = Date.now()): void {
  const m = { ts, message, error, node: node?.node ?? null };
  if (node) {
    node.messages.push(m);
    node.progressAt = Math.max(node.progressAt ?? 0, ts);
  } else {
    task.messages.push(m);
  }
  task.progressAt = Math.max(task.progressAt ?? 0, ts);
}

/** Ends a node's part: `complete` with success or failure, or `terminated` (its result stays incomplete). */
export function finishNode(task: TaskRecord, node: TaskNode, how: 'success' | 'failure' | 'terminated', message: string, ts = Date.now()): void {
  if (isFinished(node.status)) return;
  node.status = how === 'terminated' ? 'terminated' : 'complete';
  node.result = how === 'terminated' ? 'incomplete' : how;
  addMessage(task, node, message, how !== 'success', ts);
}

/** The task's result from its nodes' (a task without nodes keeps the result its action set). */
export function rollUp(task: TaskRecord): TaskResult {
  if (task.nodes.length === 0) return task.result;
  const ok = task.nodes.filter((n) => n.result === 'success').length;
  const failed = task.nodes.filter((n) => n.result === 'failure').length;
  if (ok === task.nodes.length) return 'success';
  if (ok > 0) return 'partial_success';
  return failed > 0 ? 'failure' : 'incomplete';
}

/** Ends the task: `complete`, or `terminated` when it was cancelled or cut short; nodes not finished are terminated with `why`. */
export function finishTask(task: TaskRecord, status: 'complete' | 'terminated', why: string, now = Date.now()): void {
  for (const n of task.nodes) if (!isFinished(n.status)) finishNode(task, n, 'terminated', why, now);
  task.status = status;
  task.result = rollUp(task);
  task.finished = now;
  task.progressAt = now;
}
