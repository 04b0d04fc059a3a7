/**
 * The zod schemas of what the API answers that several routes share: tasks, tokens, audit entries,
 * events, paging. Named ones (`.meta({ id })`) are components of the OpenAPI document.
 */
import { z } from 'zod';
import { ROLES, TASK_RESULTS, TASK_STATUSES } from '../registry/types.js';

export const epochMs = z.number().int().meta({ description: 'milliseconds since the epoch' });
export const role = z.enum(ROLES as [string, ...string[]]).meta({ id: 'Role', description: 'viewer reads; operator also power, bootdev, reload, console; admin everything' });

export const taskMessage = z
  .strictObject({ ts: epochMs, message: z.string(), error: z.boolean(), node: z.string().nullable() })
  .meta({ id: 'TaskMessage' });

export const taskStatus = z.enum(TASK_STATUSES as [string, ...string[]]).meta({ id: 'TaskStatus' });
export const taskResult = z.enum(TASK_RESULTS as [string, ...string[]]).meta({ id: 'TaskResult' });

export const taskNode = z
  .strictObject({
    node: z.string(),
    status: taskStatus,
    result: taskResult,
    phase: z.string().nullable().meta({ description: 'a reload: power, dhcp, kernel, init, getfile, ready' }),
    progressAt: epochMs.nullable().meta({ description: 'last progress of this node: reset a no-progress timer on it' }),
    messages: z.array(taskMessage),
  })
  .meta({ id: 'TaskNode' });

export const task = z
  .strictObject({
    id: z.string(),
    action: z.string().meta({ description: 'power, bootdev, reload, vnfs-image' }),
    params: z.record(z.string(), z.unknown()),
    status: taskStatus,
    result: taskResult,
    createdBy: z.string(),
    created: epochMs,
    started: epochMs.nullable(),
    finished: epochMs.nullable(),
    progressAt: epochMs.nullable(),
    idempotencyKey: z.string().nullable(),
    runner: z.string().nullable(),
    cancelRequested: z.strictObject({ by: z.string(), at: epochMs }).nullable(),
    messages: z.array(taskMessage),
    nodes: z.array(taskNode),
  })
  .meta({ id: 'Task' });

export const token = z
  .strictObject({
    name: z.string(),
    role,
    created: epochMs,
    expires: epochMs.nullable(),
    lastUsed: epochMs.nullable().meta({ description: 'to the minute' }),
    revoked: epochMs.nullable(),
  })
  .meta({ id: 'Token' });

export const auditEntry = z
  .strictObject({
    id: z.number().int(),
    time: epochMs,
    who: z.string(),
    role,
    action: z.string().meta({ description: 'the operationId' }),
    method: z.string(),
    path: z.string(),
    target: z.string().nullable(),
    status: z.number().int(),
    detail: z.string().nullable(),
  })
  .meta({ id: 'AuditEntry' });

/** A page of a list and the cursor of the next one (null: this was the last). */
export function page<T extends z.ZodType>(item: T, id: string) {
  return z.strictObject({ items: z.array(item), next: z.string().nullable().meta({ description: 'pass as `cursor` for the next page; null on the last' }) }).meta({ id });
}

/** `?limit=` of a list: 1..max, default `def`. */
export function limitParam(def: number, max: number) {
  return z.coerce.number().int().min(1).max(max).default(def).meta({ description: `items per page (1-${max}, default ${def})` });
}
