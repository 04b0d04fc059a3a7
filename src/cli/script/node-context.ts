/**
 * The node a `script render|list` command works for: taken from the registry (group and default
 * inheritance applied), the options overriding; a node not in the registry can be described by the
 * options alone when --nodeid is given.
 */
import { isIPv4 } from 'node:net';
import type { Command } from 'commander';
import type { Config } from '../../config/schema.js';
import type { NodeContext } from '../../nodescript/types.js';
import { scriptNodeContext } from '../../nodes/script-node.js';
import { openRegistry } from '../../registry/open.js';
import { UsageError } from '../../util/errors.js';
import { parseMac } from '../../util/mac.js';
import { assertPlainName, assertState } from '../../util/names.js';
import { cliContext, type CliContext } from '../context.js';
import { cliLogger, parseBool, parseDebug } from '../node/shared.js';

export interface NodeOptions {
  nodeid?: string;
  group?: string;
  vnfs?: string;
  enabled?: string;
  debug?: string;
  ipaddr?: string;
  /** false with --no-registry: the options alone describe the node. */
  registry?: boolean;
}

/** Adds the options describing a node to a command. */
export function nodeOptions(cmd: Command): Command {
  return cmd
    .option('--nodeid <mac>', 'hardware address (NODEID); required for a node not in the registry')
    .option('--group <group>', 'group (GROUPNAME)')
    .option('--vnfs <vnfs>', 'VNFS (VNFS)')
    .option('--enabled <0|1>', 'enabled (ENABLED)')
    .option('--debug <n>', 'debug level (DEBUG)')
    .option('--ipaddr <ip>', 'address (IPADDR)')
    .option('--no-registry', 'do not look the node up in the registry: the options and config defaults describe it');
}

export interface ScriptTarget {
  node: NodeContext;
  config: Config;
  ctx: CliContext;
  /** The node was not found in the registry (or --no-registry): described by options and defaults. */
  unregistered: boolean;
}

/** Resolves the node named `name` for `state`; options override what the registry says. */
export async function scriptTarget(cmd: Command, state: string, name: string, opts: NodeOptions): Promise<ScriptTarget> {
  assertState(state);
  const ctx = cliContext(cmd);
  const config = ctx.config();
  const d = config.defaults;
  let node: NodeContext | null = null;
  if (opts.registry !== false) {
    const reg = await openRegistry(config, cliLogger(ctx.err));
    try {
      const mac = parseMac(name);
      const rec = (await reg.getNode(name)) ?? (mac ? await reg.getNodeByNodeid(mac) : null);
      if (rec) node = await scriptNodeContext(reg, config, rec, state);
    } finally {
      await reg.close();
    }
  }
  const unregistered = node === null;
  if (!node) {
    if (!opts.nodeid) {
      throw new UsageError(
        opts.registry === false
          ? `--no-registry needs --nodeid MAC to describe node ${name}`
          : `no node ${JSON.stringify(name)} in the registry (describe an unregistered node with --nodeid MAC [--group --vnfs ...])`,
      );
    }
    assertPlainName(name, 'node name');
    node = { state, nodename: name, nodeid: '', group: d.group, vnfs: d.vnfs, enabled: d.enabled, debug: d.debug, ipaddr: '' };
  }
  if (opts.nodeid !== undefined) {
    const mac = parseMac(opts.nodeid);
    if (!mac) throw new UsageError(`invalid --nodeid ${JSON.stringify(opts.nodeid)}: not a hardware address`);
    node.nodeid = mac;
  }
  if (opts.group !== undefined) node.group = assertPlainName(opts.group, 'group name');
  if (opts.vnfs !== undefined) node.vnfs = opts.vnfs === '' ? '' : assertPlainName(opts.vnfs, 'vnfs name');
  if (opts.enabled !== undefined) node.enabled = parseBool(opts.enabled, '--enabled');
  if (opts.debug !== undefined) node.debug = parseDebug(opts.debug);
  if (opts.ipaddr !== undefined) {
    if (opts.ipaddr !== '' && !isIPv4(opts.ipaddr)) throw new UsageError(`invalid --ipaddr ${JSON.stringify(opts.ipaddr)}: not an IPv4 address`);
    node.ipaddr = opts.ipaddr;
  }
  return { node, config, ctx, unregistered };
}
