/**
 * The zod schemas of the cluster's resources as the API answers them: nodes (as `node list --json`
 * shows them), groups, VNFS, timeline steps, verdicts, nodescript plans, lint findings, modules.
 * Named ones (`.meta({ id })`) are components of the OpenAPI document.
 */
import { z } from 'zod';
import { epochMs } from './schemas.js';

const text = (description: string) => z.string().meta({ description });
const attrs = z.record(z.string(), z.string()).meta({ description: 'free-form attributes (nodescripts see ATTR_<KEY>); secrets (keys ending in password) shown as ****' });

export const nodeView = z
  .strictObject({
    name: z.string(),
    nodeid: text('hardware address, AA:BB:CC:DD:EE:FF'),
    group: text('resolved: the node\'s, else defaults.group'),
    vnfs: text('resolved VNFS; empty: none assigned'),
    enabled: z.boolean(),
    debug: z.number().int(),
    boot: z.enum(['pxe', 'local']),
    ipaddr: z.string().nullable().meta({ description: 'fixed IPv4 address; null: DHCP' }),
    desc: z.string().nullable(),
    state: z.string().nullable().meta({ description: 'the provisionary state it last asked for (init, ready, ...); null: never seen' }),
    lastaddr: z.string().nullable().meta({ description: 'the address it was last seen from' }),
    lastcontact: epochMs.nullable(),
    contact: text('12s ago, never, timed out (3h ago)'),
    timedOut: z.boolean().meta({ description: 'not heard from within node.timeout' }),
    bootVnfs: z.string().nullable().meta({ description: 'the VNFS of its last boot, as the node reported it' }),
    bootImage: z.string().nullable().meta({ description: 'the sha256 of the image it booted' }),
    currentImage: z.string().nullable().meta({ description: 'the sha256 of its VNFS\'s image now: a reboot changes the node when it differs from bootImage' }),
    owner: z.string().nullable().meta({ description: 'who the node is allocated to (POST /allocations), or null' }),
    attrs,
  })
  .meta({ id: 'Node', description: 'a node with group and default inheritance applied, as `provisiond node list --json` prints it' });

export const source = z.enum(['node', 'group', 'default']).meta({ id: 'Source', description: 'where a value comes from' });

export const verdict = z
  .strictObject({
    verdict: z.enum(['READY', 'RELOAD']).meta({ description: "Apache VCL's node_status" }),
    reason: z.string().nullable().meta({ description: 'why RELOAD (null for READY)' }),
  })
  .meta({ id: 'Verdict' });

export const nodeDetail = nodeView
  .extend({
    sources: z.record(z.string(), source).meta({ description: 'for each resolved field (attributes as attrs.<key>): node, group or default' }),
    leaseAddress: z.string().nullable().meta({ description: 'the address of its DHCP lease, when it has one' }),
    verdict,
  })
  .meta({ id: 'NodeDetail', description: 'a node with where each value comes from, its lease and its verdict' });

export const timelineEvent = z
  .strictObject({
    time: epochMs,
    nodeid: z.string(),
    source: text('dhcp, tftp, http, nodescript, node, perceus, power, admin'),
    stage: text('discover, offer, ack, tftp undionly.kpxe, init-script-start, ready, failed ...'),
    msg: z.string().nullable(),
    ok: z.boolean().meta({ description: 'false marks a failure step' }),
    addr: z.string().nullable().optional(),
  })
  .meta({ id: 'TimelineEvent' });

export const groupView = z
  .strictObject({
    name: z.string(),
    vnfs: z.string().nullable().meta({ description: 'null: not set here, the default applies' }),
    enabled: z.boolean().nullable(),
    debug: z.number().int().nullable(),
    boot: z.enum(['pxe', 'local']).nullable(),
    desc: z.string().nullable(),
    attrs,
    nodes: z.number().int().meta({ description: 'how many nodes are in it' }),
  })
  .meta({ id: 'Group', description: 'the settings a group passes on to its nodes (null: not set, the default applies)' });

export const groupDetail = groupView
  .extend({ nodeNames: z.array(z.string()).meta({ description: 'its nodes, sorted as the CLI sorts' }) })
  .meta({ id: 'GroupDetail' });

export const vnfsView = z
  .strictObject({
    name: z.string(),
    description: z.string(),
    imageBytes: z.number().int().nullable().meta({ description: 'size of image.cpio.gz; null: not built' }),
    imageBuilt: epochMs.nullable().meta({ description: 'when the image was built' }),
    nodes: z.number().int().meta({ description: 'nodes whose (inherited) VNFS this is' }),
  })
  .meta({ id: 'Vnfs' });

export const vnfsDetail = vnfsView
  .extend({
    sha256: z.string().nullable().meta({ description: 'of the current image; null: not built' }),
    config: z
      .strictObject({ description: z.string(), kernelArgs: z.string(), kernel: z.string().nullable(), initrd: z.string().nullable(), compression: z.number().int() })
      .nullable()
      .meta({ description: 'the capsule config; null when it does not parse (configError says why)' }),
    configError: z.string().nullable(),
    nodeNames: z.array(z.string()),
  })
  .meta({ id: 'VnfsDetail' });

export const planEntry = z
  .strictObject({
    name: z.string(),
    folder: text('all, group, node, vnfs'),
    dir: text('the folder relative to the state: all, group/compute, node/n0001, vnfs/centos'),
    path: z.string(),
    action: z.enum(['master', 'verbatim', 'skipped', 'shadowed']).meta({ description: 'master: runs on the master, its output goes to the node; verbatim: sent as is' }),
    reason: z.string().optional(),
    target: z.string().optional().meta({ description: 'where a symbolic link points' }),
    shadowedBy: z.string().optional(),
  })
  .meta({ id: 'PlanEntry' });

export const lintFinding = z
  .strictObject({ file: z.string(), line: z.number().int(), severity: z.enum(['error', 'warning']), message: z.string() })
  .meta({ id: 'LintFinding' });

export const moduleInfo = z
  .strictObject({ name: z.string(), description: z.string(), states: z.array(z.string()), active: z.array(z.string()).meta({ description: 'init/all, init/group/compute, ...' }) })
  .meta({ id: 'Module' });

/** Path parameter `node`: a node name or a hardware address. */
export const nodeParam = z.strictObject({ node: z.string().min(1).meta({ description: 'node name or hardware address' }) });
