/**
 * What the nodescript engine needs to know about a node, and what it reports. The engine knows
 * nothing of the registry: the daemon/CLI resolve the node and hand over a NodeContext.
 */

/** The node as nodescripts see it (the Perceus environment, plus attributes). */
export interface NodeContext {
  state: string;
  nodename: string;
  nodeid: string;
  group: string;
  vnfs: string;
  enabled: boolean;
  debug: number;
  ipaddr: string;
  /** Free-form attributes, exported as ATTR_<KEY> (key uppercased, non-alphanumerics as `_`). */
  attrs?: Record<string, string>;
}

/** Master-side settings that become VNFSMETHOD, VNFSMASTER, VNFSPREFIX, STATEDIR. */
export interface MasterContext {
  statedir: string;
  vnfsMethod: string;
  /** host[:port] of the HTTP service. */
  vnfsMaster: string;
  /** URL path prefix of getfile (`files` by default). */
  vnfsPrefix: string;
}

/** The outcome of one script, reported through the engine's onScript callback (timeline, logs). */
export interface ScriptResult {
  name: string;
  /** `all`, `group`, `node` or `vnfs`. */
  folder: string;
  /** `master`: ran on the master; `verbatim`: passed to the node as is. */
  kind: 'master' | 'verbatim' | 'skipped';
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  truncated: boolean;
  durationMs: number;
  bytes: number;
  ok: boolean;
}
