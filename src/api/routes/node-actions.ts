/**
 * What is done to or asked of one node besides its fields: import many, rename, replace the
 * hardware address (motherboard swap), its boot timeline and its VCL verdict.
 */
import { z } from 'zod';
import { importNodeList } from '../../nodes/add.js';
import { parseSince } from '../../nodes/since.js';
import { powerStatus, verdictOf } from '../../nodes/verdict.js';
import { checkName, checkNodeid } from '../../registry/validate.js';
import { UsageError } from '../../util/errors.js';
import { parseMac } from '../../util/mac.js';
import { ApiError } from '../errors.js';
import { asField, asFieldAsync, findNode, nodeDetail } from '../node-access.js';
import { defineOperation, Reply } from '../operation.js';
import { API_BASE } from '../app.js';
import { nodeDetail as nodeDetailSchema, nodeParam, timelineEvent, verdict } from '../resource-schemas.js';
import { limitParam, task } from '../schemas.js';
import { vnfsExists } from '../../vnfs/index.js';
import { isPlainName } from '../../util/names.js';
import { checkExcludes } from '../../vnfs/capture.js';
import { startTask } from './tasks.js';

/** `since` as the CLI takes it (90s, 15m, 2h, 1d, a date), or milliseconds since the epoch. */
function since(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (/^\d{10,}$/.test(text)) return Number(text);
  try {
    return parseSince(text);
  } catch (err) {
    if (err instanceof UsageError) throw new ApiError(400, 'invalid', `query.since: ${JSON.stringify(text)} is not 90s, 15m, 2h, 1d, a date or milliseconds since the epoch`, 'query.since');
    throw err;
  }
}

export const nodeActionOperations = [
  defineOperation({
    id: 'nodes.capture',
    method: 'post',
    path: '/nodes/:node/capture',
    tag: 'nodes',
    summary: "Capture a running node's root file system as a new VNFS (VCL's capture): a task (capture) with its phases",
    description:
      "The node's ready agent hears of it on its long-poll and streams its root file system (one file system, without the contents of /proc /sys /dev /run /tmp and the exclude globs) to a one-time upload URL; the upload gets the checks of `vnfs import`, the capsule appears whole or not at all, then its image is built. Phases: request, upload (message `upload: N bytes received`), import, image. A cut upload ends the task failed, with no VNFS left. 409 when the VNFS exists; 422 naming the field for a bad name or glob.",
    access: 'admin',
    params: nodeParam,
    body: z.strictObject({
      vnfs: z.string().meta({ description: 'the new VNFS (letters, digits, . _ + -); it must not exist' }),
      exclude: z.array(z.string()).optional().meta({ description: 'absolute path globs left out too (`/var/cache/*`, `/home`); `*` and `?` match as find -path' }),
      timeout: z.number().positive().optional().meta({ description: 'seconds the whole capture may take (default 3600)' }),
    }),
    response: { status: 202, description: 'the task; Location names it', schema: task },
    target: ({ params }) => params.node,
    handler: async ({ api, params, body, caller, req }) => {
      const node = await findNode(api.registry, params.node);
      if (!isPlainName(body.vnfs)) throw new ApiError(422, 'invalid', `body.vnfs: ${JSON.stringify(body.vnfs)} is not a VNFS name (letters, digits, . _ + -)`, 'body.vnfs');
      const exclude = asField('body.exclude', () => checkExcludes(body.exclude ?? []));
      // A retried POST (same Idempotency-Key, same caller) gets its first task, even once its VNFS exists.
      const key = req.headers['idempotency-key'];
      const earlier = typeof key === 'string' && key !== '' && api.tasks ? (await api.tasks.list({ limit: 1000 })).find((t) => t.action === 'capture' && t.createdBy === caller!.name && t.idempotencyKey === key) : undefined;
      if (earlier) return new Reply(202, earlier, { Location: `${API_BASE}/tasks/${earlier.id}`, 'Idempotent-Replayed': 'true' });
      if (vnfsExists(api.config().statedir, body.vnfs)) throw new ApiError(409, 'conflict', `vnfs ${body.vnfs} exists already`, 'body.vnfs');
      return startTask(api, caller!, req.headers, 'capture', { nodes: [node.name], vnfs: body.vnfs, exclude, ...(body.timeout !== undefined ? { timeout: body.timeout } : {}) });
    },
  }),
  defineOperation({
    id: 'nodes.import',
    method: 'post',
    path: '/nodes/import',
    tag: 'nodes',
    summary: 'Register the nodes of a list, as `node import`: all or none; an error names the line',
    description: 'ethers: `MAC name` lines. csv: a header naming the columns (nodeid,name,group,vnfs,ipaddr, enabled, debug, desc, boot, attrs.<key>); an empty name gets the next free name.',
    access: 'admin',
    body: z.strictObject({
      format: z.enum(['csv', 'ethers']).meta({ description: 'csv (with a header line) or ethers (`MAC name` lines)' }),
      text: z.string().min(1).meta({ description: 'the list itself' }),
    }),
    response: { status: 201, description: 'imported', schema: z.strictObject({ imported: z.number().int().meta({ description: 'how many nodes were added' }) }).meta({ id: 'ImportResult' }) },
    handler: async ({ api, body }) => {
      const first = body.text.split(/\r?\n/).find((l) => l.trim() !== '' && !l.trimStart().startsWith('#')) ?? '';
      // The parser tells the formats apart by the header's commas: a body saying otherwise is a mistake.
      if ((body.format === 'csv') !== first.includes(',')) {
        throw new ApiError(422, 'invalid', `body.text: this is ${first.includes(',') ? 'CSV' : 'not CSV (no header line with commas)'}, but format is ${body.format}`, 'body.text');
      }
      return { imported: await asFieldAsync('body.text', () => importNodeList(api.registry, api.config(), body.text, 'body.text')) };
    },
  }),
  defineOperation({
    id: 'nodes.rename',
    method: 'post',
    path: '/nodes/:node/rename',
    tag: 'nodes',
    summary: 'Rename a node: its hardware address, settings and history stay',
    access: 'admin',
    params: nodeParam,
    body: z.strictObject({ to: z.string().min(1).meta({ description: 'the new name' }) }),
    response: { status: 200, description: 'the node under its new name', schema: nodeDetailSchema },
    target: ({ params }) => params.node,
    handler: async ({ api, params, body }) => {
      const node = await findNode(api.registry, params.node);
      asField('body.to', () => checkName(body.to, 'node name'));
      return nodeDetail(api, await api.registry.renameNode(node.name, body.to));
    },
  }),
  defineOperation({
    id: 'nodes.replace',
    method: 'post',
    path: '/nodes/:node/replace',
    tag: 'nodes',
    summary: 'Give a node a new hardware address (motherboard swap): name, settings, history and address stay',
    access: 'admin',
    params: nodeParam,
    body: z.strictObject({ nodeid: z.string().meta({ description: 'the new hardware address' }) }),
    response: { status: 200, description: 'the node with its new address', schema: nodeDetailSchema },
    target: ({ params }) => params.node,
    handler: async ({ api, params, body }) => {
      const node = await findNode(api.registry, params.node);
      const mac = asField('body.nodeid', () => checkNodeid(body.nodeid));
      return nodeDetail(api, await api.registry.replaceNodeid(node.name, mac));
    },
  }),
  defineOperation({
    id: 'nodes.timeline',
    method: 'get',
    path: '/nodes/:node/timeline',
    tag: 'nodes',
    summary: 'The boot of a node step by step, oldest first (a hardware address not registered has one too)',
    access: 'viewer',
    params: nodeParam,
    query: z.strictObject({
      since: z.string().optional().meta({ description: 'only steps since then: 90s, 15m, 2h, 1d, a date, or milliseconds since the epoch' }),
      limit: limitParam(200, 10000).meta({ description: 'only the last LIMIT steps (1-10000, default 200)' }),
    }),
    response: {
      status: 200,
      description: 'the steps',
      schema: z.strictObject({ node: z.string().nullable().meta({ description: 'null: the address is not registered' }), nodeid: z.string(), events: z.array(timelineEvent) }).meta({ id: 'Timeline' }),
    },
    handler: async ({ api, params, query }) => {
      const mac = parseMac(params.node);
      const node = await findNode(api.registry, params.node).catch((err: unknown) => {
        if (mac) return null;
        throw err;
      });
      const nodeid = node?.nodeid ?? mac!;
      const all = await api.registry.listEvents(nodeid, { since: since(query.since) });
      return { node: node?.name ?? null, nodeid, events: all.slice(-query.limit) };
    },
  }),
  defineOperation({
    id: 'nodes.verdict',
    method: 'get',
    path: '/nodes/:node/verdict',
    tag: 'nodes',
    summary: "Apache VCL's node_status: READY, or RELOAD with the reason (asks the power driver, within power.timeout)",
    access: 'viewer',
    params: nodeParam,
    response: {
      status: 200,
      description: 'the verdict',
      schema: verdict
        .extend({ node: z.string(), power: z.enum(['on', 'off', 'unknown']).nullable().meta({ description: 'null: no power driver' }), powerError: z.string().nullable() })
        .meta({ id: 'NodeVerdict' }),
    },
    handler: async ({ api, params, signal }) => {
      const config = api.config();
      const r = await api.registry.resolve(await findNode(api.registry, params.node), config.defaults);
      const p = await powerStatus(r, config, signal);
      const v = await verdictOf(r, api.registry, config, { power: p.state });
      return { node: r.name, verdict: v.verdict, reason: v.reason, power: p.state, powerError: p.error };
    },
  }),
];
