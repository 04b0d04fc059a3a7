/**
 * The environment a nodescript runs with on the master: cleared, then the Perceus variables, the
 * node's attributes as ATTR_<KEY>, and READY_INTERVAL. Nothing of the daemon's own environment leaks in.
 */
import { cpus } from 'node:os';
import type { Config } from '../config/schema.js';
import type { MasterContext, NodeContext } from './types.js';

export const SCRIPT_PATH = '/bin:/usr/bin:/sbin:/usr/sbin';

/** The variables a master-side script can rely on (lint uses this list). */
export const MASTER_VARIABLES: readonly string[] = [
  'PATH', 'STATE', 'NODENAME', 'VNFS', 'ENABLED', 'DEBUG', 'GROUPNAME', 'NODEID', 'IPADDR',
  'STATEDIR', 'VNFSMETHOD', 'VNFSMASTER', 'VNFSPREFIX', 'READY_INTERVAL',
];

/** `rack.row` -> `ATTR_RACK_ROW`. */
export function attrVariable(key: string): string {
  return `ATTR_${key.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** The environment of one script run for `node`. */
export function scriptEnv(node: NodeContext, master: MasterContext): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(node.attrs ?? {})) env[attrVariable(k)] = String(v);
  Object.assign(env, {
    PATH: SCRIPT_PATH,
    STATE: node.state,
    NODENAME: node.nodename,
    VNFS: node.vnfs,
    ENABLED: node.enabled ? '1' : '0',
    DEBUG: String(node.debug),
    GROUPNAME: node.group,
    NODEID: node.nodeid.toUpperCase(),
    IPADDR: node.ipaddr,
    STATEDIR: master.statedir,
    VNFSMETHOD: master.vnfsMethod,
    VNFSMASTER: master.vnfsMaster,
    VNFSPREFIX: master.vnfsPrefix,
  });
  if (master.readyInterval !== undefined) env.READY_INTERVAL = String(master.readyInterval);
  return env;
}

/** The master context from the config: VNFSMASTER defaults to `master:http.port`, VNFSPREFIX to `files`. */
export function masterContextFromConfig(config: Pick<Config, 'statedir' | 'master' | 'http' | 'vnfs' | 'ready'>): MasterContext {
  const prefix = config.vnfs.prefix.replace(/^\/+|\/+$/g, '');
  return {
    statedir: config.statedir,
    vnfsMethod: config.vnfs.method,
    vnfsMaster: config.vnfs.master ?? `${config.master}:${config.http.port}`,
    vnfsPrefix: prefix || 'files',
    readyInterval: config.ready.interval,
  };
}

/** Engine options from config `nodescripts.*` (concurrency null = 4 x cores). */
export function engineOptionsFromConfig(config: Pick<Config, 'statedir' | 'nodescripts'>): { statedir: string; timeoutMs: number; onError: 'continue' | 'abort'; concurrency: number; maxOutput: number } {
  return {
    statedir: config.statedir,
    timeoutMs: Math.round(config.nodescripts.timeout * 1000),
    onError: config.nodescripts.onError,
    concurrency: config.nodescripts.concurrency ?? defaultConcurrency(),
    maxOutput: config.nodescripts.maxOutput,
  };
}

export function defaultConcurrency(): number {
  return 4 * Math.max(1, cpus().length);
}
