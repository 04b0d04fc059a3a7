/**
 * Inheritance: a node's value, else its group's, else the config default. Pure, shared by every
 * backend, so `node show` and the nodescript environment agree on where each value comes from.
 */
import type { AutoRegisterOptions, GroupRecord, NodeRecord, ResolvedNode, Source } from './types.js';

export type ResolveDefaults = Pick<AutoRegisterOptions, 'group' | 'vnfs' | 'enabled' | 'debug'>;

/**
 * Resolves `node` with its group (null when the group has no record) and the defaults.
 * `sources` has one entry per field (`group`, `vnfs`, `enabled`, `debug`, `boot`, `ipaddr`, `desc`)
 * and one per attribute, under `attrs.<key>`.
 */
export function resolveNode(node: NodeRecord, group: GroupRecord | null, defaults: ResolveDefaults): ResolvedNode {
  const sources: Record<string, Source> = {};
  function pick<T>(field: string, own: T | null, fromGroup: T | null | undefined, fallback: T): T {
    if (own !== null) {
      sources[field] = 'node';
      return own;
    }
    if (fromGroup !== null && fromGroup !== undefined) {
      sources[field] = 'group';
      return fromGroup;
    }
    sources[field] = 'default';
    return fallback;
  }
  sources.group = node.group !== null ? 'node' : 'default';
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(group?.attrs ?? {})) {
    attrs[k] = v;
    sources[`attrs.${k}`] = 'group';
  }
  for (const [k, v] of Object.entries(node.attrs)) {
    attrs[k] = v;
    sources[`attrs.${k}`] = 'node';
  }
  const resolved: ResolvedNode = {
    name: node.name,
    nodeid: node.nodeid,
    group: node.group ?? defaults.group,
    vnfs: pick('vnfs', node.vnfs, group?.vnfs, defaults.vnfs),
    enabled: pick('enabled', node.enabled, group?.enabled, defaults.enabled),
    debug: pick('debug', node.debug, group?.debug, defaults.debug),
    boot: pick<'pxe' | 'local'>('boot', node.boot, group?.boot, 'pxe'),
    ipaddr: node.ipaddr,
    desc: node.desc,
    state: node.state,
    lastcontact: node.lastcontact,
    lastaddr: node.lastaddr,
    bootVnfs: node.bootVnfs,
    bootImage: node.bootImage,
    attrs,
    sources,
  };
  sources.ipaddr = node.ipaddr !== null ? 'node' : 'default';
  // A group's description describes the group; nodes do not inherit it.
  sources.desc = node.desc !== null ? 'node' : 'default';
  return resolved;
}
