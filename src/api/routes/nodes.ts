/**
 * /nodes: list (patterns, group, state, verdict, paging by cursor), get, create, patch, delete.
 * Values are checked by the CLI's own validation (src/nodes/fields.ts), so a PATCH is refused with
 * the message `node set` prints for the same value.
 */
import { z } from 'zod';
import type { Config } from '../../config/schema.js';
import { addNode } from '../../nodes/add.js';
import { checkVnfsExists, mergeUpdates, NODE_FIELDS, nodeUpdate } from '../../nodes/fields.js';
import { matchNodes, splitPatterns } from '../../nodes/select.js';
import { verdictOf } from '../../nodes/verdict.js';
import type { NodeRecord, NodeUpdate } from '../../registry/types.js';
import { checkName, checkNodeid, checkNodeUpdate } from '../../registry/validate.js';
import { compareNames } from '../../util/patterns.js';
import { currentImageSha } from '../../vnfs/index.js';
import { API_BASE } from '../app.js';
import { ApiError } from '../errors.js';
import { asField, findNode, nodeDetail, nodeViews } from '../node-access.js';
import { nodesByName } from '../node-order.js';
import { defineOperation, Reply } from '../operation.js';
import { nodeDetail as nodeDetailSchema, nodeParam, nodeView } from '../resource-schemas.js';
import { limitParam, page } from '../schemas.js';

/** A value as `node set` takes it (text), or as JSON gives it (true, 3); null unsets. */
const settable = (description: string) => z.union([z.string(), z.number(), z.boolean()]).nullable().optional().meta({ description });

export const nodePatchBody = z
  .strictObject({
    group: settable('group name; null: defaults.group'),
    vnfs: settable('VNFS name (must exist unless force); empty: none; null: inherit'),
    enabled: settable('true/false (or yes/no, 1/0, on/off as node set takes them); null: inherit'),
    debug: settable('a whole number >= 0; null: inherit'),
    ipaddr: settable('fixed IPv4 address; null: DHCP'),
    desc: settable('description; null: none'),
    boot: settable('pxe or local (disk); null: inherit'),
    attrs: z.record(z.string(), z.string().nullable()).optional().meta({ description: 'attributes to set (text) or remove (null); others are kept' }),
    force: z.boolean().optional().meta({ description: 'accept a VNFS that does not exist (yet), as node set --force' }),
  })
  .meta({ id: 'NodePatch', description: 'the fields to change; those left out stay as they are' });

/** The update a PATCH body makes, each key checked as `node set KEY VALUE` checks it. */
function patchUpdate(body: z.output<typeof nodePatchBody>, config: Config): NodeUpdate {
  const updates: NodeUpdate[] = [];
  for (const key of NODE_FIELDS) {
    const v = body[key];
    if (v === undefined) continue;
    updates.push(asField(`body.${key}`, () => checkNodeUpdate(nodeUpdate(key, v === null ? null : String(v), config, { force: body.force }))));
  }
  for (const [key, v] of Object.entries(body.attrs ?? {})) {
    if ((NODE_FIELDS as readonly string[]).includes(key)) throw new ApiError(422, 'invalid', `${key} is a field, not an attribute: set it at the top level of the body`, `body.attrs.${key}`);
    updates.push(asField(`body.attrs.${key}`, () => checkNodeUpdate(nodeUpdate(key, v, config))));
  }
  return mergeUpdates(updates);
}

const VERDICTS = ['READY', 'RELOAD'] as const;

export const nodeOperations = [
  defineOperation({
    id: 'nodes.list',
    method: 'get',
    path: '/nodes',
    tag: 'nodes',
    summary: 'Nodes, sorted by name as the CLI sorts, a page at a time',
    description:
      'Filters combine: `pattern` (comma-separated CLI patterns: names, n00[01-16], n00*, hardware addresses), `group`, `state`, `verdict`. A pattern that matches nothing just matches nothing here. Pass `next` as `cursor` for the following page. The verdict filter judges without asking the power drivers.',
    access: 'viewer',
    query: z.strictObject({
      pattern: z.string().optional().meta({ description: 'comma-separated node patterns or hardware addresses' }),
      group: z.string().optional().meta({ description: 'only nodes of this (resolved) group' }),
      state: z.string().optional().meta({ description: 'only nodes whose last provisionary state is this (comma-separated: any of them)' }),
      verdict: z.enum(VERDICTS).optional().meta({ description: 'only READY or only RELOAD nodes' }),
      cursor: z.string().optional().meta({ description: 'the `next` of the previous page' }),
      limit: limitParam(500, 5000),
    }),
    response: { status: 200, description: 'a page of nodes', schema: page(nodeView, 'NodePage') },
    handler: async ({ api, query }) => {
      const config = api.config();
      let nodes = await nodesByName(api.registry, api.pacer);
      await api.pacer.pace();
      if (query.pattern !== undefined) nodes = matchNodes(nodes, splitPatterns(query.pattern)).nodes;
      if (query.group !== undefined) nodes = nodes.filter((n) => (n.group ?? config.defaults.group) === query.group);
      if (query.state !== undefined) {
        const states = new Set(query.state.split(','));
        nodes = nodes.filter((n) => n.state !== null && states.has(n.state));
      }
      if (query.cursor !== undefined) {
        const after = query.cursor;
        // Sorted: the first name after the cursor by binary search.
        let lo = 0;
        let hi = nodes.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (compareNames(nodes[mid]!.name, after) > 0) hi = mid;
          else lo = mid + 1;
        }
        nodes = nodes.slice(lo);
      }
      let pageNodes: NodeRecord[];
      if (query.verdict === undefined) {
        pageNodes = nodes.slice(0, query.limit + 1);
      } else {
        // Judged lazily, in order, until the page is full: a verdict reads the node's timeline.
        pageNodes = [];
        const images = new Map<string, Promise<string | null>>();
        const image = (v: string) => images.get(v) ?? images.set(v, currentImageSha(config.statedir, v)).get(v)!;
        const now = Date.now();
        for (const n of nodes) {
          await api.pacer.pace();
          const v = await verdictOf(await api.registry.resolve(n, config.defaults), api.registry, config, { now, currentImage: image });
          if (v.verdict === query.verdict) pageNodes.push(n);
          if (pageNodes.length > query.limit) break;
        }
      }
      const more = pageNodes.length > query.limit;
      if (more) pageNodes.pop();
      return { items: await nodeViews(api, config, pageNodes), next: more ? pageNodes.at(-1)!.name : null };
    },
  }),
  defineOperation({
    id: 'nodes.get',
    method: 'get',
    path: '/nodes/:node',
    tag: 'nodes',
    summary: 'One node: resolved values and where each comes from, attributes, lease address, verdict',
    description: 'The verdict here does not ask the power driver; GET /nodes/{node}/verdict does.',
    access: 'viewer',
    params: nodeParam,
    response: { status: 200, description: 'the node', schema: nodeDetailSchema },
    handler: async ({ api, params }) => nodeDetail(api, await findNode(api.registry, params.node)),
  }),
  defineOperation({
    id: 'nodes.create',
    method: 'post',
    path: '/nodes',
    tag: 'nodes',
    summary: 'Register a node, as `node add`: its hardware address, and its name (default: the next free name of defaults.nodeName)',
    access: 'admin',
    body: z
      .strictObject({
        nodeid: z.string().meta({ description: 'hardware address, e.g. 52:54:00:12:34:56 (any case, : or -)' }),
        name: z.string().optional().meta({ description: 'node name; default: the next free name of defaults.nodeName' }),
        group: z.string().optional().meta({ description: 'default: defaults.group' }),
        vnfs: z.string().optional().meta({ description: 'default: inherited from its group' }),
        ipaddr: z.string().optional().meta({ description: 'fixed IPv4 address' }),
        desc: z.string().optional(),
        force: z.boolean().optional().meta({ description: 'accept a VNFS that does not exist (yet)' }),
      })
      .meta({ id: 'NewNode' }),
    response: { status: 201, description: 'registered; Location names it', schema: nodeDetailSchema },
    target: ({ body }) => body.name ?? body.nodeid,
    handler: async ({ api, body }) => {
      const config = api.config();
      if (body.vnfs !== undefined) asField('body.vnfs', () => checkVnfsExists(config, body.vnfs!, body.force));
      const { nodeid, name, force: _force, ...opts } = body;
      asField('body.nodeid', () => checkNodeid(nodeid));
      if (name !== undefined) asField('body.name', () => checkName(name, 'node name'));
      if (opts.group !== undefined) asField('body.group', () => checkName(opts.group, 'group name'));
      if (opts.ipaddr !== undefined) asField('body.ipaddr', () => checkNodeUpdate({ ipaddr: opts.ipaddr }));
      const added = await addNode(api.registry, config, nodeid, name, opts);
      return new Reply(201, await nodeDetail(api, added), { Location: `${API_BASE}/nodes/${encodeURIComponent(added.name)}` });
    },
  }),
  defineOperation({
    id: 'nodes.patch',
    method: 'patch',
    path: '/nodes/:node',
    tag: 'nodes',
    summary: 'Change fields and attributes of a node, with the validation (and messages) of `node set`',
    access: 'admin',
    params: nodeParam,
    body: nodePatchBody,
    response: { status: 200, description: 'the node as it is now', schema: nodeDetailSchema },
    target: ({ params }) => params.node,
    handler: async ({ api, params, body }) => {
      const node = await findNode(api.registry, params.node);
      const update = patchUpdate(body, api.config());
      const updated = Object.keys(update).length > 0 ? await api.registry.updateNode(node.name, update) : node;
      return nodeDetail(api, updated);
    },
  }),
  defineOperation({
    id: 'nodes.delete',
    method: 'delete',
    path: '/nodes/:node',
    tag: 'nodes',
    summary: 'Delete a node from the registry',
    access: 'admin',
    params: nodeParam,
    response: { status: 204, description: 'deleted' },
    target: ({ params }) => params.node,
    handler: async ({ api, params }) => {
      const node = await findNode(api.registry, params.node);
      await api.registry.deleteNode(node.name);
      return undefined;
    },
  }),
];
