/**
 * What `node set|unset` and `group set|unset` may change: the fields (group, vnfs, enabled, debug,
 * ipaddr, desc, boot) by name, anything else as a free-form attribute (`rack`, `power.driver`).
 * The CLI and the API's PATCH share it, so both refuse the same values with the same messages.
 */
import { existsSync } from 'node:fs';
import { statePath } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { GroupUpdate, NodeUpdate } from '../registry/types.js';
import { checkAttrKey } from '../registry/validate.js';
import { UsageError } from '../util/errors.js';

const READ_ONLY: Record<string, string> = {
  name: 'use `provisiond node rename OLD NEW`',
  nodeid: 'use `provisiond node replace NAME NEW-MAC`',
  state: 'it is what the node last asked for',
  lastcontact: 'it is recorded when the node asks',
  lastaddr: 'it is recorded when the node asks',
};

export const NODE_FIELDS = ['group', 'vnfs', 'enabled', 'debug', 'ipaddr', 'desc', 'boot'] as const;
export const GROUP_FIELDS = ['vnfs', 'enabled', 'debug', 'desc', 'boot'] as const;

export interface SetOptions {
  force?: boolean;
}

/** The update `node set KEY VALUE` (value given) or `node unset KEY` (value null) makes. */
export function nodeUpdate(key: string, value: string | null, config: Config, opts: SetOptions = {}): NodeUpdate {
  if (key in READ_ONLY) throw new UsageError(`${key} cannot be set: ${READ_ONLY[key]}`);
  if ((NODE_FIELDS as readonly string[]).includes(key)) return fieldUpdate(key, value, config, opts) as NodeUpdate;
  return { attrs: { [checkKey(key)]: value } };
}

/** The update `group set KEY VALUE` / `group unset KEY` makes (a group has no group nor ipaddr). */
export function groupUpdate(key: string, value: string | null, config: Config, opts: SetOptions = {}): GroupUpdate {
  if (key === 'group' || key === 'ipaddr' || key in READ_ONLY) throw new UsageError(`${key} is a node setting, not a group setting`);
  if ((GROUP_FIELDS as readonly string[]).includes(key)) return fieldUpdate(key, value, config, opts) as GroupUpdate;
  return { attrs: { [checkKey(key)]: value } };
}

function checkKey(key: string): string {
  try {
    return checkAttrKey(key);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function fieldUpdate(key: string, value: string | null, config: Config, opts: SetOptions): NodeUpdate {
  if (value === null) return { [key]: null };
  switch (key) {
    case 'enabled':
      return { enabled: parseBool(value, 'enabled') };
    case 'debug':
      return { debug: parseDebug(value) };
    case 'boot':
      return { boot: parseBoot(value) };
    case 'vnfs':
      checkVnfsExists(config, value, opts.force);
      return { vnfs: value };
    default:
      return { [key]: value };
  }
}

/** `yes/no/true/false/1/0/on/off` -> boolean. */
export function parseBool(value: string, what: string): boolean {
  const v = value.toLowerCase();
  if (['yes', 'true', '1', 'on', 'enabled'].includes(v)) return true;
  if (['no', 'false', '0', 'off', 'disabled'].includes(v)) return false;
  throw new UsageError(`invalid ${what} ${JSON.stringify(value)}: use yes or no`);
}

export function parseDebug(value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`invalid debug level ${JSON.stringify(value)}: use a whole number >= 0`);
  return Number(value);
}

export function parseBoot(value: string): 'pxe' | 'local' {
  const v = value.toLowerCase();
  if (v === 'pxe' || v === 'local') return v;
  if (v === 'disk') return 'local';
  throw new UsageError(`invalid boot ${JSON.stringify(value)}: use pxe or local`);
}

/** A VNFS must exist as `<statedir>/vnfs/<name>/` (imported or built) unless the admin forces it. */
export function checkVnfsExists(config: Config, vnfs: string, force: boolean | undefined): void {
  if (vnfs === '' || force) return;
  const dir = statePath(config, `vnfs/${vnfs}`);
  if (!existsSync(dir)) {
    throw new UsageError(`no vnfs named ${JSON.stringify(vnfs)} (${dir} does not exist): import or build it first, or use --force`);
  }
}

/** Merges updates made key by key (`attrs` merged too), as one update in one transaction. */
export function mergeUpdates<U extends NodeUpdate | GroupUpdate>(updates: readonly U[]): U {
  const out: NodeUpdate = {};
  for (const u of updates) {
    const { attrs, ...fields } = u;
    Object.assign(out, fields);
    if (attrs) out.attrs = { ...out.attrs, ...attrs };
  }
  return out as U;
}
