/** `provisiond group show <G>`: every setting of the group (set here, or the default) and its nodes. */
import type { Command } from 'commander';
import { fewNames } from '../node/shared.js';
import { maskedAttrs, printJson, shown, yesNo } from '../node/output.js';
import { withRegistry } from '../node/shared.js';
import { groupInfo } from '../../nodes/groups.js';

export function register(group: Command): void {
  group
    .command('show')
    .description('show the settings of a group and where each comes from (group or default)')
    .argument('<group>', 'group name')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx, config) => {
        const { group: g, nodes } = await groupInfo(reg, config, name);
        if (opts.json) return printJson(ctx.out, { ...g, attrs: maskedAttrs(g.attrs), nodes });
        const d = config.defaults;
        const rows: Array<[string, string, string]> = [
          ['vnfs', g.vnfs ?? d.vnfs, g.vnfs !== null ? 'group' : 'default'],
          ['enabled', yesNo(g.enabled ?? d.enabled), g.enabled !== null ? 'group' : 'default'],
          ['debug', String(g.debug ?? d.debug), g.debug !== null ? 'group' : 'default'],
          ['boot', g.boot ?? 'pxe', g.boot !== null ? 'group' : 'default'],
          ['desc', g.desc ?? '', ''],
        ];
        for (const k of Object.keys(g.attrs).sort()) rows.push([k, shown(k, g.attrs[k]!), 'group']);
        rows.forEach((r) => (r[1] ||= r[0] === 'vnfs' ? '(none)' : r[1]));
        const kw = Math.max(...rows.map((r) => r[0].length));
        const vw = Math.max(...rows.map((r) => r[1].length));
        ctx.out.write(`${g.name}\n`);
        for (const [k, v, s] of rows) ctx.out.write(`${`  ${k.padEnd(kw)}  ${s ? `${v.padEnd(vw)}  (${s})` : v}`.trimEnd()}\n`);
        ctx.out.write(`  ${'nodes'.padEnd(kw)}  ${nodes.length}${nodes.length ? `: ${fewNames(nodes.map((n) => ({ name: n })), 10)}` : ''}\n`);
      });
    });
}
