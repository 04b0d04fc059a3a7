/**
 * Power, boot device, reload and deploy: each a task (202 with it, Location, Idempotency-Key honoured) on
 * one node (`/nodes/{node}/...`) or on the nodes patterns name (`/power`, `/bootdev`, `/reload`);
 * and a node's power state now, from its driver.
 */
import { z } from 'zod';
import { matchNodes } from '../../nodes/select.js';
import { powerStatus } from '../../nodes/verdict.js';
import { POWER_ACTIONS } from '../../power/types.js';
import { parseMac } from '../../util/mac.js';
import { vnfsExists } from '../../vnfs/index.js';
import type { ApiContext } from '../context.js';
import { ApiError } from '../errors.js';
import { findNode } from '../node-access.js';
import { defineOperation } from '../operation.js';
import { nodeParam } from '../resource-schemas.js';
import { task } from '../schemas.js';
import { startTask } from './tasks.js';

const action = z.enum(POWER_ACTIONS as [string, ...string[]]).meta({ id: 'PowerAction', description: 'on, off (hard), shutdown (ACPI), reset (hard), cycle (off then on)' });
const device = z.enum(['pxe', 'disk']).meta({ description: 'pxe (network) or disk' });
const persistent = z.boolean().optional().meta({ description: 'for every boot, not only the next one' });
const reloadTimeout = z.number().positive().optional().meta({ description: 'seconds to wait for the nodes to be ready again (default: the task runner\'s)' });
const deployVnfs = z.string().regex(/^[\w.+-]+$/).meta({ description: 'the VNFS to boot (it must exist)' });
const patterns = z.array(z.string().min(1)).min(1).meta({ description: 'node names, patterns as in the CLI (n00[01-16], n00*) or hardware addresses' });
const taskAnswer = { status: 202, description: 'the task; Location names it', schema: task };

/** 422 naming body.vnfs when the VNFS does not exist. */
function checkVnfs(api: ApiContext, vnfs: string): void {
  if (!vnfsExists(api.config().statedir, vnfs)) throw new ApiError(422, 'invalid', `body.vnfs: no VNFS ${JSON.stringify(vnfs)}`, 'body.vnfs');
}

/**
 * The patterns as the task gets them, after checking each names a node (422 naming the field
 * otherwise): hardware addresses become the names they belong to, name patterns stay patterns.
 */
async function checkedPatterns(api: ApiContext, given: string[]): Promise<string[]> {
  const nodes = await api.registry.listNodes();
  const { unmatched } = matchNodes(nodes, given);
  if (unmatched.length > 0) {
    throw new ApiError(422, 'invalid', `body.nodes: ${unmatched.map((p) => JSON.stringify(p)).join(', ')} ${unmatched.length === 1 ? 'matches' : 'match'} no node`, 'body.nodes');
  }
  return given.map((p) => {
    const mac = parseMac(p);
    return mac ? nodes.find((n) => n.nodeid === mac)!.name : p;
  });
}

export const powerOperations = [
  defineOperation({
    id: 'nodes.power',
    method: 'post',
    path: '/nodes/:node/power',
    tag: 'power',
    summary: "Power a node on, off, shutdown, reset or cycle through its power driver: a task (power)",
    access: 'operator',
    params: nodeParam,
    body: z.strictObject({ action }),
    response: taskAnswer,
    target: ({ params }) => params.node,
    handler: async ({ api, params, body, caller, req }) => {
      const node = await findNode(api.registry, params.node);
      return startTask(api, caller!, req.headers, 'power', { nodes: [node.name], action: body.action });
    },
  }),
  defineOperation({
    id: 'power.run',
    method: 'post',
    path: '/power',
    tag: 'power',
    summary: 'Power the nodes the patterns name: a task (power) with one result per node',
    access: 'operator',
    body: z.strictObject({ nodes: patterns, action }),
    response: taskAnswer,
    target: ({ body }) => body.nodes.join(','),
    handler: async ({ api, body, caller, req }) => startTask(api, caller!, req.headers, 'power', { nodes: await checkedPatterns(api, body.nodes), action: body.action }),
  }),
  defineOperation({
    id: 'nodes.powerState',
    method: 'get',
    path: '/nodes/:node/power',
    tag: 'power',
    summary: "The node's power state now, from its driver (within power.timeout)",
    access: 'viewer',
    params: nodeParam,
    response: {
      status: 200,
      description: 'what the driver says',
      schema: z.strictObject({ node: z.string(), driver: z.string(), state: z.enum(['on', 'off', 'unknown']) }).meta({ id: 'PowerState' }),
    },
    extraResponses: { 409: { description: 'the node has no power driver (attribute power.driver)' }, 502: { description: "the driver or the BMC failed: the driver's message" } },
    handler: async ({ api, params, signal }) => {
      const config = api.config();
      const r = await api.registry.resolve(await findNode(api.registry, params.node), config.defaults);
      const p = await powerStatus(r, config, signal);
      if (p.state === null) throw new ApiError(409, 'no_driver', `${r.name} has no power driver: set its power.driver attribute (or its group's)`);
      if (p.error !== null) throw new ApiError(502, 'driver_failed', `${r.name}: power status: ${p.error}`);
      return { node: r.name, driver: p.driver!, state: p.state };
    },
  }),
  defineOperation({
    id: 'nodes.bootdev',
    method: 'post',
    path: '/nodes/:node/bootdev',
    tag: 'power',
    summary: "Set the boot device the node's BMC uses at the next boot (or every boot): a task (bootdev)",
    access: 'operator',
    params: nodeParam,
    body: z.strictObject({ device, persistent }),
    response: taskAnswer,
    target: ({ params }) => params.node,
    handler: async ({ api, params, body, caller, req }) => {
      const node = await findNode(api.registry, params.node);
      return startTask(api, caller!, req.headers, 'bootdev', { nodes: [node.name], device: body.device, persistent: body.persistent ?? false });
    },
  }),
  defineOperation({
    id: 'bootdev.run',
    method: 'post',
    path: '/bootdev',
    tag: 'power',
    summary: 'Set the boot device of the nodes the patterns name: a task (bootdev)',
    access: 'operator',
    body: z.strictObject({ nodes: patterns, device, persistent }),
    response: taskAnswer,
    target: ({ body }) => body.nodes.join(','),
    handler: async ({ api, body, caller, req }) =>
      startTask(api, caller!, req.headers, 'bootdev', { nodes: await checkedPatterns(api, body.nodes), device: body.device, persistent: body.persistent ?? false }),
  }),
  defineOperation({
    id: 'nodes.reload',
    method: 'post',
    path: '/nodes/:node/reload',
    tag: 'power',
    summary: 'Reboot a node into its VNFS and follow it until ready: a task (reload) with its phase',
    access: 'operator',
    params: nodeParam,
    body: z.strictObject({ timeout: reloadTimeout }),
    response: taskAnswer,
    target: ({ params }) => params.node,
    handler: async ({ api, params, body, caller, req }) => {
      const node = await findNode(api.registry, params.node);
      return startTask(api, caller!, req.headers, 'reload', { nodes: [node.name], ...(body.timeout !== undefined ? { timeout: body.timeout } : {}) });
    },
  }),
  defineOperation({
    id: 'reload.run',
    method: 'post',
    path: '/reload',
    tag: 'power',
    summary: 'Reboot the nodes the patterns name and follow them until ready: a task (reload)',
    access: 'operator',
    body: z.strictObject({ nodes: patterns, timeout: reloadTimeout }),
    response: taskAnswer,
    target: ({ body }) => body.nodes.join(','),
    handler: async ({ api, body, caller, req }) =>
      startTask(api, caller!, req.headers, 'reload', { nodes: await checkedPatterns(api, body.nodes), ...(body.timeout !== undefined ? { timeout: body.timeout } : {}) }),
  }),
  defineOperation({
    id: 'nodes.deploy',
    method: 'post',
    path: '/nodes/:node/deploy',
    tag: 'power',
    summary: 'Deploy a VNFS on a node: set its VNFS, reboot it and follow it until ready on that VNFS: a task (deploy) with its phase',
    description: 'The VNFS is set (and committed) before the power cycle: a node the daemon loses track of still boots it. A VNFS that does not exist: 422 naming body.vnfs.',
    access: 'operator',
    params: nodeParam,
    body: z.strictObject({ vnfs: deployVnfs, timeout: reloadTimeout }),
    response: taskAnswer,
    target: ({ params }) => params.node,
    handler: async ({ api, params, body, caller, req }) => {
      const node = await findNode(api.registry, params.node);
      checkVnfs(api, body.vnfs);
      return startTask(api, caller!, req.headers, 'deploy', { nodes: [node.name], vnfs: body.vnfs, ...(body.timeout !== undefined ? { timeout: body.timeout } : {}) });
    },
  }),
  defineOperation({
    id: 'deploy.run',
    method: 'post',
    path: '/deploy',
    tag: 'power',
    summary: 'Deploy a VNFS on the nodes the patterns name: a task (deploy)',
    access: 'operator',
    body: z.strictObject({ nodes: patterns, vnfs: deployVnfs, timeout: reloadTimeout }),
    response: taskAnswer,
    target: ({ body }) => body.nodes.join(','),
    handler: async ({ api, body, caller, req }) => {
      const nodes = await checkedPatterns(api, body.nodes);
      checkVnfs(api, body.vnfs);
      return startTask(api, caller!, req.headers, 'deploy', { nodes, vnfs: body.vnfs, ...(body.timeout !== undefined ? { timeout: body.timeout } : {}) });
    },
  }),
];
