/**
 * /allocations: a free node given to an owner and deployed (OpenNebula's deploy, a VCL reservation),
 * and given back. The claim is atomic (src/nodes/allocate.ts): fifty callers after a group of twenty
 * get twenty nodes and thirty clear refusals. An allocation answer carries its deploy task.
 */
import { z } from 'zod';
import { allocateNode, allocationOf, NoFreeNodeError, releaseNode, type Allocation } from '../../nodes/allocate.js';
import { vnfsExists } from '../../vnfs/index.js';
import type { ApiContext } from '../context.js';
import { ApiError } from '../errors.js';
import { findNode } from '../node-access.js';
import { defineOperation, Reply, type Caller } from '../operation.js';
import { nodeParam } from '../resource-schemas.js';
import { API_BASE } from '../app.js';
import { startTask } from './tasks.js';

const allocation = z
  .strictObject({
    node: z.string().meta({ description: 'the node allocated' }),
    nodeid: z.string().meta({ description: 'its hardware address' }),
    owner: z.string(),
    since: z.string().meta({ description: 'when it was allocated (ISO 8601)' }),
    hostname: z.string().nullable().meta({ description: 'the host name it takes instead of its node name' }),
    vnfs: z.string().meta({ description: 'its VNFS (the one deployed, once the deploy task has set it)' }),
    task: z.string().nullable().meta({ description: 'the task deploying it (POST), or powering it off (DELETE); null when none' }),
  })
  .meta({ id: 'Allocation' });

const owner = z.string().regex(/^\S{1,200}$/).meta({ description: 'who the node is for: a tenant, a VM id, a reservation (no spaces)' });

function present(a: Allocation, task: string | null) {
  return { ...a, task };
}

/**
 * The allocation an earlier POST with the same Idempotency-Key (same caller) made, if any. A key
 * whose allocation was released, or that was sent for another owner, is refused: replaying it can
 * neither give the old node back nor allocate a new one under the old deploy task.
 */
async function replayed(api: ApiContext, caller: Caller, key: string | null, owner: string): Promise<Reply | null> {
  if (key === null || !api.tasks) return null;
  const earlier = (await api.tasks.list({ limit: 1000 })).find((t) => t.action === 'deploy' && t.createdBy === caller.name && t.idempotencyKey === key);
  if (!earlier) return null;
  const name = earlier.nodes[0]?.node ?? '';
  const node = await api.registry.getNode(name);
  const a = node ? allocationOf(node) : null;
  if (!a) throw new ApiError(422, 'invalid', `header.Idempotency-Key: already used for the allocation of ${name}, since released: send a new key`, 'header.Idempotency-Key');
  if (a.owner !== owner) throw new ApiError(422, 'invalid', `header.Idempotency-Key: already used for an allocation to another owner: send a new key`, 'header.Idempotency-Key');
  return new Reply(201, present(a, earlier.id), { Location: `${API_BASE}/allocations/${a.node}`, 'Idempotent-Replayed': 'true' });
}

export const allocationOperations = [
  defineOperation({
    id: 'allocations.create',
    method: 'post',
    path: '/allocations',
    tag: 'allocations',
    summary: 'Allocate a free node to an owner and deploy a VNFS on it: 201 with the allocation and its deploy task',
    description:
      'A free node is enabled, not allocated, and has a power driver. The claim is atomic: two callers never get one node. None free: 409 saying how many there are and why none was taken. Idempotency-Key: a retry gets the same node, not a second one.',
    access: 'operator',
    body: z
      .strictObject({
        group: z.string().min(1).optional().meta({ description: 'take a node of this group...' }),
        pattern: z.string().min(1).optional().meta({ description: '...or one the (comma-separated) CLI patterns match' }),
        vnfs: z.string().regex(/^[\w.+-]+$/).meta({ description: 'the VNFS to deploy on it (it must exist)' }),
        owner,
        hostname: z
          .string()
          .regex(/^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/)
          .optional()
          .meta({ description: 'the host name the node takes instead of its node name' }),
        timeout: z.number().positive().optional().meta({ description: 'seconds the deploy waits for the node to be ready' }),
      })
      .refine((b) => (b.group === undefined) !== (b.pattern === undefined), { message: 'give group or pattern, one of the two', path: ['group'] }),
    response: { status: 201, description: 'the allocation; Location names it', schema: allocation },
    target: ({ body }) => body.group ?? body.pattern ?? null,
    handler: async ({ api, body, caller, req }) => {
      const key = typeof req.headers['idempotency-key'] === 'string' && req.headers['idempotency-key'] !== '' ? req.headers['idempotency-key'] : null;
      const again = await replayed(api, caller!, key, body.owner);
      if (again) return again;
      if (!vnfsExists(api.config().statedir, body.vnfs)) throw new ApiError(422, 'invalid', `body.vnfs: no VNFS ${JSON.stringify(body.vnfs)}`, 'body.vnfs');
      let node;
      try {
        node = await allocateNode(api.registry, api.config(), { group: body.group, pattern: body.pattern, vnfs: body.vnfs, owner: body.owner, hostname: body.hostname });
      } catch (err) {
        if (err instanceof NoFreeNodeError) throw new ApiError(409, 'no_free_node', err.message);
        throw err;
      }
      let reply: Reply;
      try {
        reply = await startTask(api, caller!, req.headers, 'deploy', { nodes: [node.name], vnfs: body.vnfs, ...(body.timeout !== undefined ? { timeout: body.timeout } : {}) });
      } catch (err) {
        // Not deployed: the node goes back to the pool.
        await releaseNode(api.registry, node.name).catch(() => {});
        throw err;
      }
      if (reply.headers['Idempotent-Replayed']) {
        // A retry with the same key raced this one and won: this node goes back, the first one is the answer.
        await releaseNode(api.registry, node.name).catch(() => {});
        const first = await replayed(api, caller!, key, body.owner);
        if (first) return first;
        throw new ApiError(409, 'conflict', 'header.Idempotency-Key: a request with this key is being answered: retry');
      }
      const taskId = (reply.body as { id: string }).id;
      return new Reply(201, present({ ...allocationOf(node)!, vnfs: body.vnfs }, taskId), { Location: `${API_BASE}/allocations/${node.name}` });
    },
  }),
  defineOperation({
    id: 'allocations.list',
    method: 'get',
    path: '/allocations',
    tag: 'allocations',
    summary: 'The allocated nodes and their owners',
    access: 'viewer',
    query: z.strictObject({ owner: z.string().optional().meta({ description: 'only this owner\'s' }) }),
    response: { status: 200, description: 'the allocations, by node name', schema: z.strictObject({ items: z.array(allocation) }).meta({ id: 'AllocationList' }) },
    handler: async ({ api, query }) => {
      const items = (await api.registry.listNodes())
        .map(allocationOf)
        .filter((a): a is Allocation => a !== null && (query.owner === undefined || a.owner === query.owner))
        .sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
        .map((a) => present(a, null));
      return { items };
    },
  }),
  defineOperation({
    id: 'allocations.get',
    method: 'get',
    path: '/allocations/:node',
    tag: 'allocations',
    summary: 'One node\'s allocation (404 when it is not allocated)',
    access: 'viewer',
    params: nodeParam,
    response: { status: 200, description: 'the allocation', schema: allocation },
    handler: async ({ api, params }) => {
      const a = allocationOf(await findNode(api.registry, params.node));
      if (!a) throw new ApiError(404, 'not_found', `node ${params.node} is not allocated`);
      return present(a, null);
    },
  }),
  defineOperation({
    id: 'allocations.release',
    method: 'delete',
    path: '/allocations/:node',
    tag: 'allocations',
    summary: 'Release a node: powered off (a power task) unless keep=true, then free for the next allocation',
    access: 'operator',
    params: nodeParam,
    query: z.strictObject({ keep: z.enum(['true', 'false']).optional().meta({ description: 'true: leave it running' }) }),
    response: { status: 200, description: 'the allocation that ended, with the power-off task', schema: allocation },
    target: ({ params }) => params.node,
    handler: async ({ api, params, query, caller }) => {
      const node = await findNode(api.registry, params.node);
      if (!allocationOf(node)) throw new ApiError(409, 'conflict', `node ${node.name} is not allocated`);
      let task: string | null = null;
      if (query.keep !== 'true') {
        const reply = await startTask(api, caller!, {}, 'power', { nodes: [node.name], action: 'off' });
        task = (reply.body as { id: string }).id;
      }
      return present(await releaseNode(api.registry, node.name), task);
    },
  }),
];
