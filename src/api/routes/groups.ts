/**
 * /groups: the settings (vnfs, enabled, debug, boot, desc, attributes) a group passes on to its
 * nodes. PUT replaces them all, PATCH changes some; both check values as `group set` does.
 */
import { z } from 'zod';
import type { Config } from '../../config/schema.js';
import { GROUP_FIELDS, groupUpdate, mergeUpdates } from '../../nodes/fields.js';
import { groupInfo, listGroupInfo } from '../../nodes/groups.js';
import { maskedAttrs } from '../../nodes/present.js';
import type { GroupRecord, GroupUpdate } from '../../registry/types.js';
import { checkGroupUpdate, checkName } from '../../registry/validate.js';
import { ApiError } from '../errors.js';
import { asField, nodeViews } from '../node-access.js';
import { defineOperation } from '../operation.js';
import { groupDetail, groupView, nodeView } from '../resource-schemas.js';

const groupParam = z.strictObject({ group: z.string().min(1).meta({ description: 'group name' }) });
const settable = (description: string) => z.union([z.string(), z.number(), z.boolean()]).nullable().optional().meta({ description });

const fields = {
  vnfs: settable('VNFS name (must exist unless force); null: the default'),
  enabled: settable('true/false (or yes/no as group set takes them); null: the default'),
  debug: settable('a whole number >= 0; null: the default'),
  desc: settable('description'),
  boot: settable('pxe or local (disk); null: the default'),
  force: z.boolean().optional().meta({ description: 'accept a VNFS that does not exist (yet)' }),
};

const groupPatch = z
  .strictObject({ ...fields, attrs: z.record(z.string(), z.string().nullable()).optional().meta({ description: 'attributes to set (text) or remove (null); others kept' }) })
  .meta({ id: 'GroupPatch', description: 'the settings to change; those left out stay' });
const groupPut = z
  .strictObject({ ...fields, attrs: z.record(z.string(), z.string()).optional().meta({ description: 'every attribute of the group; those not listed are removed' }) })
  .meta({ id: 'GroupSettings', description: 'every setting of the group; those left out are unset (their default applies)' });

/** The update of a body, each key checked as `group set KEY VALUE` checks it. */
function bodyUpdate(body: z.output<typeof groupPatch>, config: Config): GroupUpdate {
  const updates: GroupUpdate[] = [];
  for (const key of GROUP_FIELDS) {
    const v = body[key];
    if (v === undefined) continue;
    updates.push(asField(`body.${key}`, () => checkGroupUpdate(groupUpdate(key, v === null ? null : String(v), config, { force: body.force }))));
  }
  for (const [key, v] of Object.entries(body.attrs ?? {})) {
    if ((GROUP_FIELDS as readonly string[]).includes(key) || key === 'group' || key === 'ipaddr') {
      throw new ApiError(422, 'invalid', `${key} is not an attribute: set ${GROUP_FIELDS.includes(key as never) ? 'it at the top level of the body' : 'it on the nodes'}`, `body.attrs.${key}`);
    }
    updates.push(asField(`body.attrs.${key}`, () => checkGroupUpdate(groupUpdate(key, v, config))));
  }
  return mergeUpdates(updates);
}

const view = (g: GroupRecord, nodes: string[]) => ({ ...g, attrs: maskedAttrs(g.attrs), nodes: nodes.length });
const detail = (g: GroupRecord, nodes: string[]) => ({ ...view(g, nodes), nodeNames: nodes });

export const groupOperations = [
  defineOperation({
    id: 'groups.list',
    method: 'get',
    path: '/groups',
    tag: 'groups',
    summary: 'Groups: those with settings and those only named by nodes, with how many nodes each has',
    access: 'viewer',
    response: { status: 200, description: 'every group', schema: z.strictObject({ items: z.array(groupView) }).meta({ id: 'GroupList' }) },
    handler: async ({ api }) => ({ items: (await listGroupInfo(api.registry, api.config())).map(({ group, nodes }) => view(group, nodes)) }),
  }),
  defineOperation({
    id: 'groups.get',
    method: 'get',
    path: '/groups/:group',
    tag: 'groups',
    summary: 'One group: its settings (null: the default applies) and its nodes',
    access: 'viewer',
    params: groupParam,
    response: { status: 200, description: 'the group', schema: groupDetail },
    handler: async ({ api, params }) => {
      const { group, nodes } = await groupInfo(api.registry, api.config(), params.group);
      return detail(group, nodes);
    },
  }),
  defineOperation({
    id: 'groups.put',
    method: 'put',
    path: '/groups/:group',
    tag: 'groups',
    summary: "Set every setting of a group (creating it): what the body leaves out is unset",
    access: 'admin',
    params: groupParam,
    body: groupPut,
    response: { status: 200, description: 'the group as it is now', schema: groupDetail },
    target: ({ params }) => params.group,
    handler: async ({ api, params, body }) => {
      const config = api.config();
      asField('params.group', () => checkName(params.group, 'group name'));
      const current = await api.registry.getGroup(params.group);
      const attrs: Record<string, string | null> = Object.fromEntries(Object.keys(current?.attrs ?? {}).map((k) => [k, null]));
      Object.assign(attrs, body.attrs ?? {});
      const full = { vnfs: null, enabled: null, debug: null, desc: null, boot: null, ...body, attrs };
      await api.registry.updateGroup(params.group, bodyUpdate(full, config));
      const { group, nodes } = await groupInfo(api.registry, config, params.group);
      return detail(group, nodes);
    },
  }),
  defineOperation({
    id: 'groups.patch',
    method: 'patch',
    path: '/groups/:group',
    tag: 'groups',
    summary: 'Change some settings of a group (creating it), with the validation of `group set`',
    access: 'admin',
    params: groupParam,
    body: groupPatch,
    response: { status: 200, description: 'the group as it is now', schema: groupDetail },
    target: ({ params }) => params.group,
    handler: async ({ api, params, body }) => {
      const config = api.config();
      asField('params.group', () => checkName(params.group, 'group name'));
      await api.registry.updateGroup(params.group, bodyUpdate(body, config));
      const { group, nodes } = await groupInfo(api.registry, config, params.group);
      return detail(group, nodes);
    },
  }),
  defineOperation({
    id: 'groups.delete',
    method: 'delete',
    path: '/groups/:group',
    tag: 'groups',
    summary: "Delete a group's settings: its nodes keep the group name and get the defaults",
    access: 'admin',
    params: groupParam,
    response: { status: 204, description: 'deleted' },
    target: ({ params }) => params.group,
    handler: async ({ api, params }) => {
      await api.registry.deleteGroup(params.group);
      return undefined;
    },
  }),
  defineOperation({
    id: 'groups.nodes',
    method: 'get',
    path: '/groups/:group/nodes',
    tag: 'groups',
    summary: "A group's nodes, sorted by name, as GET /nodes shows them",
    access: 'viewer',
    params: groupParam,
    response: { status: 200, description: 'its nodes', schema: z.strictObject({ items: z.array(nodeView) }).meta({ id: 'GroupNodes' }) },
    handler: async ({ api, params }) => {
      const config = api.config();
      const { nodes } = await groupInfo(api.registry, config, params.group);
      const wanted = new Set(nodes);
      const records = (await api.registry.listNodes()).filter((n) => wanted.has(n.name));
      const byName = new Map(records.map((n) => [n.name, n]));
      return { items: await nodeViews(api, config, nodes.map((n) => byName.get(n)!)) };
    },
  }),
];
