/**
 * /vnfs: the capsules, with their image's size, sha256 and build time, and the nodes using each;
 * clone, delete, and an image build as a task (`vnfs-image`, 202).
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Config } from '../../config/schema.js';
import { cloneCapsule, deleteCapsule } from '../../vnfs/capsule-ops.js';
import { capsuleDir, currentImageSha, IMAGE_FILE, listVnfsNames, readCapsuleConfig, vnfsExists } from '../../vnfs/index.js';
import { compareNames } from '../../util/patterns.js';
import { errorMessage } from '../../util/errors.js';
import type { RegistryStore } from '../../registry/types.js';
import type { ApiContext } from '../context.js';
import { ApiError } from '../errors.js';
import { asField } from '../node-access.js';
import { defineOperation, Reply } from '../operation.js';
import { vnfsDetail, vnfsView } from '../resource-schemas.js';
import { task } from '../schemas.js';
import { API_BASE } from '../app.js';
import { startTask } from './tasks.js';

const nameParam = z.strictObject({ name: z.string().min(1).meta({ description: 'VNFS name' }) });

/** Names of the nodes whose (inherited) VNFS is each name, sorted. */
async function nodesByVnfs(reg: RegistryStore, config: Config): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const n of await reg.listNodes()) {
    const r = await reg.resolve(n, config.defaults);
    if (r.vnfs) out.set(r.vnfs, [...(out.get(r.vnfs) ?? []), r.name]);
  }
  for (const names of out.values()) names.sort(compareNames);
  return out;
}

/** The VNFS the path names, or 404. */
function existing(api: ApiContext, name: string): string {
  const statedir = api.config().statedir;
  asField('params.name', () => capsuleDir(statedir, name));
  if (!vnfsExists(statedir, name)) throw new ApiError(404, 'not_found', `no vnfs named ${JSON.stringify(name)}`);
  return name;
}

async function summary(statedir: string, name: string, users: Map<string, string[]>) {
  const img = await stat(join(capsuleDir(statedir, name), IMAGE_FILE)).catch(() => null);
  const config = await readCapsuleConfig(statedir, name).then(
    (c) => ({ config: c, configError: null }),
    (e: unknown) => ({ config: null, configError: errorMessage(e) }),
  );
  return { name, img, ...config, nodeNames: users.get(name) ?? [] };
}

export const vnfsOperations = [
  defineOperation({
    id: 'vnfs.list',
    method: 'get',
    path: '/vnfs',
    tag: 'vnfs',
    summary: 'VNFS capsules: image size and build time, how many nodes use each, description',
    access: 'viewer',
    response: { status: 200, description: 'every VNFS', schema: z.strictObject({ items: z.array(vnfsView) }).meta({ id: 'VnfsList' }) },
    handler: async ({ api }) => {
      const config = api.config();
      const users = await nodesByVnfs(api.registry, config);
      const items = [];
      for (const name of await listVnfsNames(config.statedir)) {
        const s = await summary(config.statedir, name, users);
        items.push({ name, description: s.config?.description ?? `(bad config: ${s.configError})`, imageBytes: s.img?.size ?? null, imageBuilt: s.img ? Math.round(s.img.mtimeMs) : null, nodes: s.nodeNames.length });
      }
      return { items };
    },
  }),
  defineOperation({
    id: 'vnfs.get',
    method: 'get',
    path: '/vnfs/:name',
    tag: 'vnfs',
    summary: 'One VNFS: its image (size, sha256, build time), its capsule config, the nodes using it',
    access: 'viewer',
    params: nameParam,
    response: { status: 200, description: 'the VNFS', schema: vnfsDetail },
    handler: async ({ api, params }) => {
      const config = api.config();
      const name = existing(api, params.name);
      const s = await summary(config.statedir, name, await nodesByVnfs(api.registry, config));
      return {
        name,
        description: s.config?.description ?? '',
        imageBytes: s.img?.size ?? null,
        imageBuilt: s.img ? Math.round(s.img.mtimeMs) : null,
        nodes: s.nodeNames.length,
        sha256: s.img ? await currentImageSha(config.statedir, name) : null,
        config: s.config,
        configError: s.configError,
        nodeNames: s.nodeNames,
      };
    },
  }),
  defineOperation({
    id: 'vnfs.clone',
    method: 'post',
    path: '/vnfs/:name/clone',
    tag: 'vnfs',
    summary: 'Copy a VNFS to a new name (rootfs, config, nodescripts; the image is rebuilt when needed)',
    access: 'admin',
    params: nameParam,
    body: z.strictObject({ to: z.string().min(1).meta({ description: 'the new VNFS name' }) }),
    response: { status: 201, description: 'cloned; Location names the copy', schema: vnfsView },
    target: ({ params }) => params.name,
    handler: async ({ api, params, body }) => {
      const statedir = api.config().statedir;
      existing(api, params.name);
      asField('body.to', () => capsuleDir(statedir, body.to));
      if (vnfsExists(statedir, body.to)) throw new ApiError(409, 'conflict', `vnfs ${body.to} exists already`, 'body.to');
      await cloneCapsule(statedir, params.name, body.to);
      const s = await summary(statedir, body.to, new Map());
      return new Reply(201, { name: body.to, description: s.config?.description ?? '', imageBytes: null, imageBuilt: null, nodes: 0 }, { Location: `${API_BASE}/vnfs/${encodeURIComponent(body.to)}` });
    },
  }),
  defineOperation({
    id: 'vnfs.delete',
    method: 'delete',
    path: '/vnfs/:name',
    tag: 'vnfs',
    summary: 'Delete a VNFS (the servers sharing the database forget its image); refused (409) while nodes use it, unless force=true',
    access: 'admin',
    params: nameParam,
    query: z.strictObject({ force: z.enum(['true', 'false']).optional().meta({ description: 'true: delete even when nodes use it' }) }),
    response: { status: 204, description: 'deleted' },
    target: ({ params }) => params.name,
    handler: async ({ api, params, query }) => {
      const config = api.config();
      const name = existing(api, params.name);
      const nodes = (await nodesByVnfs(api.registry, config)).get(name) ?? [];
      if (query.force !== 'true' && nodes.length > 0) {
        const shown = nodes.slice(0, 5).join(', ') + (nodes.length > 5 ? `, ... (${nodes.length} nodes)` : '');
        throw new ApiError(409, 'conflict', `vnfs ${name} is used by ${shown}: move them to another vnfs first, or force=true`);
      }
      await deleteCapsule(config.statedir, name);
      // The servers sharing the database forget its image: none fetches it back.
      await api.registry.forgetImage(name);
      return undefined;
    },
  }),
  defineOperation({
    id: 'vnfs.image',
    method: 'post',
    path: '/vnfs/:name/image',
    tag: 'vnfs',
    summary: 'Build the node image of a VNFS now: a task (vnfs-image); the answer is 202 with it',
    access: 'admin',
    params: nameParam,
    response: { status: 202, description: 'the task; Location names it', schema: task },
    target: ({ params }) => params.name,
    handler: async ({ api, params, caller, req }) => startTask(api, caller!, req.headers, 'vnfs-image', { vnfs: existing(api, params.name) }),
  }),
];
