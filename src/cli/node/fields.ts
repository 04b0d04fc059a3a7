/**
 * What `node set|unset` and `group set|unset` may change: the fields (group, vnfs, enabled, debug,
 * ipaddr, desc, boot) by name, anything else as a free-form attribute (`rack`, `power.driver`).
 */
import type { Config } from '../../config/schema.js';
import type { GroupUpdate, NodeUpdate } from '../../registry/types.js';
import { checkAttrKey } from '../../registry/validate.js';
import { UsageError } from '../../util/errors.js';
import { checkVnfsExists, parseBool, parseBoot, parseDebug } from './shared.js';

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
