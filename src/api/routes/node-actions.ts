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
import { defineOperation } from '../operation.js';
import { nodeDetail as nodeDetailSchema, nodeParam, timelineEvent, verdict } from '../resource-schemas.js';
import { limitParam } from '../schemas.js';

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
