/**
 * What a task may be asked to do, and the check of its parameters. A bad parameter is a UsageError
 * naming it (`power: params.action "of": expected on, off, shutdown, reset, cycle`), so the CLI
 * prints one line and the API answers 400 with the field.
 */
import { POWER_ACTIONS, type BootDevice, type PowerAction } from '../power/types.js';
import { UsageError } from '../util/errors.js';
import { checkExcludes } from '../vnfs/capture.js';

export type TaskAction = 'power' | 'bootdev' | 'reload' | 'deploy' | 'vnfs-image' | 'capture';
export const TASK_ACTIONS: readonly TaskAction[] = ['power', 'bootdev', 'reload', 'deploy', 'vnfs-image', 'capture'];
export const BOOT_DEVICES: readonly BootDevice[] = ['pxe', 'disk'];

export interface TaskRequest {
  action: TaskAction;
  /**
   * power: `{ nodes: string[] (patterns, names or MACs), action: on|off|shutdown|reset|cycle }`;
   * bootdev: `{ nodes, device: pxe|disk, persistent?: boolean }`;
   * reload: `{ nodes, timeout?: seconds (default config node.timeout), interval?: seconds between looks at the registry (1) }`;
   * deploy: reload's, and `vnfs`: the VNFS each node is set to first;
   * vnfs-image: `{ vnfs: string }`;
   * capture: `{ nodes: [one node], vnfs: the new VNFS, exclude?: path globs, timeout?: seconds (default 3600) }`.
   * The fanned-out ones also take `concurrency`, `callTimeout` (seconds per driver call) and `retries`
   * (defaults: config power.*).
   */
  params: Record<string, unknown>;
  /** The token name, or `cli:USER`. */
  createdBy: string;
  idempotencyKey?: string | null;
}

/** The fan-out settings of a task; null where the config's default applies. */
export interface FanOutParams {
  concurrency: number | null;
  callTimeout: number | null;
  retries: number | null;
}

export type TaskParams =
  | ({ action: 'power'; nodes: string[]; power: PowerAction } & FanOutParams)
  | ({ action: 'bootdev'; nodes: string[]; device: BootDevice; persistent: boolean } & FanOutParams)
  | ({ action: 'reload'; nodes: string[]; timeout: number | null; interval: number } & FanOutParams)
  | ({ action: 'deploy'; nodes: string[]; vnfs: string; timeout: number | null; interval: number } & FanOutParams)
  | { action: 'vnfs-image'; vnfs: string }
  | { action: 'capture'; nodes: string[]; vnfs: string; exclude: string[]; timeout: number | null };

const FAN_OUT_KEYS = ['concurrency', 'callTimeout', 'retries'];
const KEYS: Record<TaskAction, string[]> = {
  power: ['nodes', 'action', ...FAN_OUT_KEYS],
  bootdev: ['nodes', 'device', 'persistent', ...FAN_OUT_KEYS],
  reload: ['nodes', 'timeout', 'interval', ...FAN_OUT_KEYS],
  deploy: ['nodes', 'vnfs', 'timeout', 'interval', ...FAN_OUT_KEYS],
  'vnfs-image': ['vnfs'],
  capture: ['nodes', 'vnfs', 'exclude', 'timeout'],
};

/** Checks a request's action and parameters; returns them typed. */
export function parseParams(action: unknown, params: unknown): TaskParams {
  if (!TASK_ACTIONS.includes(action as TaskAction)) throw new UsageError(`task action ${JSON.stringify(action)}: expected ${TASK_ACTIONS.join(', ')}`);
  const a = action as TaskAction;
  if (params === null || typeof params !== 'object' || Array.isArray(params)) throw new UsageError(`${a}: params: expected an object`);
  const p = params as Record<string, unknown>;
  const bad = (key: string, want: string): never => {
    throw new UsageError(`${a}: params.${key} ${JSON.stringify(p[key]) ?? 'missing'}: expected ${want}`);
  };
  for (const key of Object.keys(p)) if (!KEYS[a].includes(key)) throw new UsageError(`${a}: params.${key}: unknown parameter (known: ${KEYS[a].join(', ')})`);
  const num = (key: string, min: number, integer: boolean): number | null => {
    const v = p[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) bad(key, `${integer ? 'an integer' : 'a number'} >= ${min}`);
    return v as number;
  };
  if (a === 'vnfs-image') {
    if (typeof p.vnfs !== 'string' || !/^[\w.+-]+$/.test(p.vnfs)) bad('vnfs', 'a VNFS name');
    return { action: a, vnfs: p.vnfs as string };
  }
  if (a === 'capture') {
    if (typeof p.vnfs !== 'string' || !/^[\w.+-]+$/.test(p.vnfs)) bad('vnfs', 'a VNFS name');
    if (!Array.isArray(p.nodes) || p.nodes.length !== 1 || typeof p.nodes[0] !== 'string' || p.nodes[0] === '') bad('nodes', 'one node name');
    if (p.exclude !== undefined && !Array.isArray(p.exclude)) bad('exclude', 'a list of path globs');
    const timeout = num('timeout', 1, false);
    return { action: a, nodes: p.nodes as string[], vnfs: p.vnfs as string, exclude: checkExcludes((p.exclude as unknown[] | undefined) ?? []), timeout };
  }
  const nodes = p.nodes;
  if (!Array.isArray(nodes) || nodes.length === 0 || nodes.some((n) => typeof n !== 'string' || n.trim() === '')) bad('nodes', 'a non-empty list of node names, patterns or MACs');
  const fan: FanOutParams = { concurrency: num('concurrency', 1, true), callTimeout: num('callTimeout', 0.001, false), retries: num('retries', 0, true) };
  const base = { nodes: nodes as string[], ...fan };
  if (a === 'power') {
    if (!POWER_ACTIONS.includes(p.action as PowerAction)) bad('action', POWER_ACTIONS.join(', '));
    return { action: a, power: p.action as PowerAction, ...base };
  }
  if (a === 'bootdev') {
    if (!BOOT_DEVICES.includes(p.device as BootDevice)) bad('device', BOOT_DEVICES.join(', '));
    if (p.persistent !== undefined && typeof p.persistent !== 'boolean') bad('persistent', 'true or false');
    return { action: a, device: p.device as BootDevice, persistent: p.persistent === true, ...base };
  }
  const timeout = num('timeout', 0.001, false);
  if (timeout === 0) bad('timeout', 'seconds > 0');
  const wait = { timeout, interval: num('interval', 0.01, false) ?? 1, ...base };
  if (a === 'deploy') {
    if (typeof p.vnfs !== 'string' || !/^[\w.+-]+$/.test(p.vnfs)) bad('vnfs', 'a VNFS name');
    return { action: a, vnfs: p.vnfs as string, ...wait };
  }
  return { action: a, ...wait };
}
