/**
 * /tasks: long and fanned-out actions (Drydock's model). Routes that start one (power, reload, image
 * builds) answer 202 with the task through `startTask`, which honours `Idempotency-Key`: an
 * orchestrator that retries a POST gets the task of its first try, not a second power cycle.
 */
import { z } from 'zod';
import type { TaskRecord } from '../../registry/types.js';
import type { ApiContext } from '../context.js';
import { ApiError } from '../errors.js';
import { defineOperation, Reply, type Caller } from '../operation.js';
import { limitParam, page, task, taskStatus } from '../schemas.js';
import { API_BASE } from '../app.js';

function runner(api: ApiContext) {
  if (!api.tasks) throw new ApiError(503, 'unavailable', 'this daemon runs no task runner');
  return api.tasks;
}

/** Submits a task for `caller`; the answer is 202 with the task and its Location. */
export async function startTask(
  api: ApiContext,
  caller: Caller,
  headers: Record<string, string | string[] | undefined>,
  action: string,
  params: Record<string, unknown>,
): Promise<Reply> {
  const key = headers['idempotency-key'];
  const idempotencyKey = typeof key === 'string' && key !== '' ? key : null;
  if (idempotencyKey !== null && idempotencyKey.length > 200) throw new ApiError(400, 'invalid', 'Idempotency-Key: at most 200 characters', 'header.Idempotency-Key');
  const { task: t, created } = await runner(api).submit({ action, params, createdBy: caller.name, idempotencyKey });
  return new Reply(202, t, { Location: `${API_BASE}/tasks/${t.id}`, ...(created ? {} : { 'Idempotent-Replayed': 'true' }) });
}

const idParam = z.strictObject({ id: z.string().min(1) });

async function found(api: ApiContext, id: string): Promise<TaskRecord> {
  const t = await runner(api).get(id);
  if (!t) throw new ApiError(404, 'not_found', `no task ${JSON.stringify(id)}`);
  return t;
}

export const taskOperations = [
  defineOperation({
    id: 'tasks.list',
    method: 'get',
    path: '/tasks',
    tag: 'tasks',
    summary: 'Tasks, newest first',
    access: 'viewer',
    query: z.strictObject({
      status: z
        .string()
        .optional()
        .transform((s, ctx) => {
          if (s === undefined) return undefined;
          const list = s.split(',');
          const bad = list.find((x) => !taskStatus.safeParse(x).success);
          if (bad !== undefined) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(bad)} is not a task status (${taskStatus.options.join(', ')})` });
          return list as TaskRecord['status'][];
        })
        .meta({ description: 'comma-separated statuses' }),
      unfinished: z.enum(['true', 'false']).optional().meta({ description: 'true: only tasks neither terminated nor complete' }),
      cursor: z.string().optional(),
      limit: limitParam(100, 1000),
    }),
    response: { status: 200, description: 'a page of tasks', schema: page(task, 'TaskPage') },
    handler: async ({ api, query }) => {
      const items = await runner(api).list({ status: query.status, unfinished: query.unfinished === 'true', before: query.cursor, limit: query.limit + 1 });
      const more = items.length > query.limit;
      if (more) items.pop();
      return { items, next: more ? items.at(-1)!.id : null };
    },
  }),
  defineOperation({
    id: 'tasks.get',
    method: 'get',
    path: '/tasks/:id',
    tag: 'tasks',
    summary: 'One task: status, result, phases and messages per node',
    access: 'viewer',
    params: idParam,
    response: { status: 200, description: 'the task', schema: task },
    handler: async ({ api, params }) => found(api, params.id),
  }),
  defineOperation({
    id: 'tasks.cancel',
    method: 'post',
    path: '/tasks/:id/cancel',
    tag: 'tasks',
    summary: 'Cancel a task: it goes terminating, then terminated once its actions in flight have stopped',
    access: 'operator',
    params: idParam,
    response: { status: 202, description: 'cancel requested', schema: task },
    target: ({ params }) => params.id,
    handler: async ({ api, params, caller }) => {
      await found(api, params.id);
      return runner(api).cancel(params.id, caller!.name);
    },
  }),
];
