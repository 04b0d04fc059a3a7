/**
 * Nodescripts: what a node would receive in a state (rendered now, as `script render`), the plan of
 * which scripts it gets (`script list`), the lint of the tree (`script lint`), the tree itself with
 * modes and checksums (for `script diff --server` on another server) and the modules (`module list`).
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { discover, masterContextFromConfig } from '../../nodescript/index.js';
import { lintTree } from '../../nodescript/lint.js';
import { listModules } from '../../nodescript/modules.js';
import { listTree } from '../../nodescript/tree.js';
import { scriptNodeContext } from '../../nodes/script-node.js';
import { assertState } from '../../util/names.js';
import { asField, findNode } from '../node-access.js';
import { defineOperation, HANDLED } from '../operation.js';
import { lintFinding, moduleInfo, planEntry } from '../resource-schemas.js';

const scriptParams = z.strictObject({
  node: z.string().min(1).meta({ description: 'node name or hardware address' }),
  state: z.string().min(1).meta({ description: 'provisionary state: init, ready, ...' }),
});

const treeEntry = z
  .strictObject({
    path: z.string().meta({ description: 'relative to the nodescripts folder, `/`-separated' }),
    type: z.enum(['file', 'dir', 'link', 'other']),
    mode: z.string().regex(/^[0-7]{4}$/).meta({ description: 'permission bits, four octal digits' }),
    size: z.number().int().nonnegative().meta({ description: "a file's bytes; 0 otherwise" }),
    sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable().meta({ description: "a file's content; null otherwise" }),
    target: z.string().nullable().meta({ description: 'where a link points, as written; null otherwise' }),
  })
  .meta({ id: 'NodescriptTreeEntry' });

export const scriptOperations = [
  defineOperation({
    id: 'scripts.render',
    method: 'get',
    path: '/nodes/:node/scripts/:state',
    tag: 'scripts',
    summary: "Exactly the script the node would receive in this state: runs its master-side nodescripts now, as `script render`",
    description: 'The answer is the script (text/x-shellscript). `X-Nodescript-Failures` counts the scripts that failed (their failure is in the script, as the node would get it).',
    access: 'viewer',
    params: scriptParams,
    query: z.strictObject({ master: z.string().optional().meta({ description: 'VNFSMASTER the node is told (default: config vnfs.master, else master:http.port)' }) }),
    response: { status: 200, description: 'the script', contentType: 'text/x-shellscript' },
    handler: async ({ api, params, query, res, signal }) => {
      const state = asField('params.state', () => assertState(params.state));
      const config = api.config();
      const node = await scriptNodeContext(api.registry, config, await findNode(api.registry, params.node), state);
      const master = masterContextFromConfig(config);
      if (query.master) master.vnfsMaster = query.master;
      let failed = 0;
      const chunks: Buffer[] = [];
      // Whole, then sent: the failure count goes in a header, and a render is small.
      for await (const chunk of api.nodescripts.render(node, master, { signal, onScript: (r) => void (r.ok || r.kind === 'skipped' || failed++) })) {
        chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
      }
      res.status(200).setHeader('Content-Type', 'text/x-shellscript; charset=utf-8');
      res.setHeader('X-Nodescript-Failures', String(failed));
      res.end(Buffer.concat(chunks));
      return HANDLED;
    },
  }),
  defineOperation({
    id: 'scripts.plan',
    method: 'get',
    path: '/nodes/:node/scripts/:state/plan',
    tag: 'scripts',
    summary: 'The nodescripts the node gets in this state, in order, and what happens to each (nothing runs), as `script list`',
    access: 'viewer',
    params: scriptParams,
    response: { status: 200, description: 'the plan', schema: z.strictObject({ node: z.string(), state: z.string(), items: z.array(planEntry) }).meta({ id: 'ScriptPlan' }) },
    handler: async ({ api, params }) => {
      const state = asField('params.state', () => assertState(params.state));
      const config = api.config();
      const node = await scriptNodeContext(api.registry, config, await findNode(api.registry, params.node), state);
      return { node: node.nodename, state, items: await discover(config.statedir, state, node) };
    },
  }),
  defineOperation({
    id: 'lint.get',
    method: 'get',
    path: '/lint',
    tag: 'scripts',
    summary: 'Check the nodescripts tree (and the modules), as `script lint`',
    description: 'Power commands run on the master, $VAR expanding on the master, silent or skipped scripts, bad links and names.',
    access: 'viewer',
    query: z.strictObject({ state: z.string().optional().meta({ description: 'only this provisionary state (default: every state and the modules)' }) }),
    response: {
      status: 200,
      description: 'the findings; paths relative to the statedir',
      schema: z.strictObject({ errors: z.number().int(), warnings: z.number().int(), items: z.array(lintFinding) }).meta({ id: 'LintReport' }),
    },
    handler: async ({ api, query }) => {
      const statedir = api.config().statedir;
      if (query.state !== undefined) asField('query.state', () => assertState(query.state!));
      const findings = await lintTree(resolve(statedir, 'nodescripts'), statedir, query.state);
      const rel = (f: string) => (f.startsWith(`${resolve(statedir)}/`) ? f.slice(resolve(statedir).length + 1) : f);
      const items = findings.map((f) => ({ ...f, file: rel(f.file) }));
      const errors = items.filter((f) => f.severity === 'error').length;
      return { errors, warnings: items.length - errors, items };
    },
  }),
  defineOperation({
    id: 'scripts.tree',
    method: 'get',
    path: '/nodescripts',
    tag: 'scripts',
    summary: "The nodescripts tree: every file, folder and link with its mode, and each file's sha256 (what `script diff --server` compares)",
    description: 'Read-only. Dotfiles and editor or package leftovers are left out: no node gets them.',
    access: 'viewer',
    response: {
      status: 200,
      description: 'the entries, sorted bytewise by path',
      schema: z.strictObject({ root: z.literal('nodescripts'), items: z.array(treeEntry) }).meta({ id: 'NodescriptTree' }),
    },
    handler: async ({ api }) => ({ root: 'nodescripts' as const, items: await listTree(resolve(api.config().statedir, 'nodescripts')) }),
  }),
  defineOperation({
    id: 'modules.list',
    method: 'get',
    path: '/modules',
    tag: 'scripts',
    summary: 'Nodescript modules: the states each has scripts for and where it is active, as `module list`',
    access: 'viewer',
    response: { status: 200, description: 'every module', schema: z.strictObject({ items: z.array(moduleInfo) }).meta({ id: 'ModuleList' }) },
    handler: async ({ api }) => ({ items: await listModules(api.config().statedir) }),
  }),
];
