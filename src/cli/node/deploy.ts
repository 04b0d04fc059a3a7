/**
 * `provisiond node deploy <VNFS> <PATTERN...> [--wait]`: set the nodes' VNFS, then reload them (boot
 * device pxe, power cycle) and with --wait follow them until each is ready on that VNFS. One deploy
 * task, the same the API's POST /nodes/{node}/deploy starts (`task show` reads it).
 */
import type { Command } from 'commander';
import { reloadNodes, reloadOptions, type ReloadFlags } from '../reload/index.js';

/** Adds the `deploy` verb to the `node` noun. */
export function registerDeploy(node: Command): void {
  reloadOptions(
    node.command('deploy <vnfs> <pattern...>').description('deploy a VNFS: set it on the nodes, power cycle them into it, and (--wait) follow them until ready on it'),
  ).action(async (vnfs: string, patterns: string[], flags: ReloadFlags, cmd: Command) => reloadNodes(cmd, patterns, flags, vnfs));
}
