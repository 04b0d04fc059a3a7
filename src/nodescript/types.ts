/**
 * What the nodescript engine needs to know about a node, and what it reports. The engine knows
 * nothing of the registry: the daemon/CLI resolve the node and hand over a NodeContext.
 */
import type { Readable } from 'node:stream';
import type { Logger } from '../log/logger.js';

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
  /** Seconds between check-ins of the ready-state agent (config `ready.interval`); exported as READY_INTERVAL. */
  readyInterval?: number;
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
  /** The folder relative to the state (`all`, `group/compute`, `node/n0001`, `vnfs/centos`). */
  dir?: string;
  /** Why it failed or was skipped, in words (`exit 3`, `timed out after 30 s`, `not executable`). */
  reason?: string;
}

/** The four folders of a state, most specific first (Perceus's override order). */
export type FolderKind = 'node' | 'group' | 'all' | 'vnfs';

/** One file found for a node, and what the engine will do with it (what `script list` shows). */
export interface PlanEntry {
  name: string;
  folder: FolderKind;
  /** The folder relative to the state: `all`, `group/compute`, `node/n0001`, `vnfs/centos`. */
  dir: string;
  /** Absolute path of the file (of the link, when it is a symbolic link). */
  path: string;
  /**
   * `master`: executable, runs on the master; `verbatim`: a non-executable shell script sent to the node as is;
   * `skipped`: not used (reason says why); `shadowed`: a more specific folder has the same name.
   */
  action: 'master' | 'verbatim' | 'skipped' | 'shadowed';
  reason?: string;
  /** For a symbolic link: where it points (resolved). */
  target?: string;
  /** For `shadowed`: the dir of the entry that wins. */
  shadowedBy?: string;
}

/** Options of an engine; the daemon takes them from config `nodescripts.*`. */
export interface EngineOptions {
  statedir: string;
  /** Milliseconds one script may run before its process group gets SIGTERM (then SIGKILL 2 s later). Default 30000. */
  timeoutMs?: number;
  /** `continue` (default, as Perceus) or `abort` (end the node's script with `exit 1` after a failure). */
  onError?: 'continue' | 'abort';
  /** Script processes running at once across all nodes. Default 4 x cores. */
  concurrency?: number;
  /** Bytes of output one script may print before it is cut and treated as failed. Default 64 MiB. */
  maxOutput?: number;
  logger: Logger;
}

export interface RenderOptions {
  /** Aborting stops the render: the running script's process group is killed and the stream ends with an error. */
  signal?: AbortSignal;
  /** Called after each script (run, verbatim or skipped). */
  onScript?: (r: ScriptResult) => void;
}

/** The nodescript engine: one per daemon, shared by every request. */
export interface NodescriptEngine {
  /**
   * The node's whole script for `node.state` as a byte stream, each script's output streamed as it is produced.
   * Throws a UsageError at once for an invalid state or node/group/VNFS name.
   */
  render(node: NodeContext, master: MasterContext, opts?: RenderOptions): Readable;
  /** What would be used for this node in `state`, in order (discovery only, nothing runs). */
  plan(state: string, node: Pick<NodeContext, 'nodename' | 'group' | 'vnfs'>): Promise<PlanEntry[]>;
  /** Processes running now (for tests and status). */
  readonly running: number;
  /** Renders in flight (a render between two scripts runs no process but is not finished). */
  readonly renders?: number;
  /** Renders waiting for a process slot (the concurrency limit is reached). */
  readonly waiting?: number;
  /**
   * Refuses new renders, lets those in flight finish for up to `graceMs` (default 0), then kills what
   * still runs and stops the spawner. A reload retiring an engine passes a grace period.
   */
  close(opts?: { graceMs?: number }): Promise<void>;
}
