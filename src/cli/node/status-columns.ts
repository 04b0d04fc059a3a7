/**
 * The columns of `provisiond node status`. Other parts add a column with one import and one entry
 * in `statusColumns` (the power helper adds the READY/RELOAD verdict and the power state here).
 */
import type { Config } from '../../config/schema.js';
import type { RegistryStore, ResolvedNode } from '../../registry/types.js';
import { powerColumn, verdictColumn } from '../power/status-columns.js';
import { contactAge, yesNo } from './output.js';
import { shownAddress } from '../../nodes/view.js';

/** What a column may use to compute its value. */
export interface StatusContext {
  config: Config;
  registry: RegistryStore;
  now: number;
}

export interface StatusColumn {
  header: string;
  /** Key in `--json` output. */
  key: string;
  /** The value for one node (may be async: a power query, say). */
  value(node: ResolvedNode, ctx: StatusContext): string | Promise<string>;
}

export const statusColumns: StatusColumn[] = [
  { header: 'NAME', key: 'name', value: (n) => n.name },
  { header: 'STATE', key: 'state', value: (n) => n.state ?? '-' },
  { header: 'LAST CONTACT', key: 'contact', value: (n, c) => contactAge(n.lastcontact, c.config.node.timeout, c.now) },
  { header: 'ADDRESS', key: 'address', value: (n) => shownAddress(n) },
  { header: 'VNFS', key: 'vnfs', value: (n) => n.vnfs || '-' },
  { header: 'ENABLED', key: 'enabled', value: (n) => yesNo(n.enabled) },
  { header: 'BOOT', key: 'boot', value: (n) => n.boot },
  verdictColumn,
  powerColumn,
];
