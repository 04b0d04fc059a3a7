/** `provisiond group list` and `group nodelist <G>`. */
import type { Command } from 'commander';
import { maskedAttrs, printJson, printTable, shown, yesNo } from '../node/output.js';
import { withRegistry } from '../node/shared.js';
import { listGroupInfo } from '../../nodes/groups.js';

export function register(group: Command): void {
  group
    .command('list')
    .alias('ls')
    .description('list groups: nodes in each and the settings they pass on')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx, config) => {
        const groups = await listGroupInfo(reg, config);
        if (opts.json) return printJson(ctx.out, groups.map(({ group, nodes }) => ({ ...group, attrs: maskedAttrs(group.attrs), nodes: nodes.length })));
        const v = (x: string | null, fallback: string) => (x === null || x === '' ? fallback : x);
        const rows = groups.map(({ group: g, nodes }) => [
          g.name,
          String(nodes.length),
          v(g.vnfs, '-'),
          g.enabled === null ? '-' : yesNo(g.enabled),
          g.debug === null ? '-' : String(g.debug),
          g.boot ?? '-',
          Object.entries(g.attrs).map(([k, val]) => `${k}=${shown(k, val)}`).join(' ') || '-',
          g.desc ?? '',
        ]);
        printTable(ctx.out, ['GROUP', 'NODES', 'VNFS', 'ENABLED', 'DEBUG', 'BOOT', 'ATTRIBUTES', 'DESC'], rows);
      });
    });
}
