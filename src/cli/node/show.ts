/** `provisiond node show <PATTERN...>`: every field of each node, with where its value comes from. */
import type { Command } from 'commander';
import type { ResolvedNode } from '../../registry/types.js';
import { printJson, shown, yesNo } from './output.js';
import { selectNodes, withRegistry } from './shared.js';
import { nodeView, resolveAll } from '../../nodes/view.js';

export function register(node: Command): void {
  node
    .command('show')
    .description('show every setting of nodes, and where each comes from (node, group or default)')
    .argument('<pattern...>', 'node names or patterns')
    .option('-i, --nodeid', 'patterns match hardware addresses instead of names')
    .option('--json', 'print JSON (with a sources object)')
    .action(async (patterns: string[], opts: { nodeid?: boolean; json?: boolean }, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx, config) => {
        const resolved = await resolveAll(reg, config, await selectNodes(reg, patterns, { byNodeid: opts.nodeid }));
        if (opts.json) return printJson(ctx.out, resolved.map((r) => ({ ...nodeView(r, config), sources: r.sources })));
        const now = Date.now();
        resolved.forEach((r, i) => {
          if (i > 0) ctx.out.write('\n');
          ctx.out.write(showLines(r, nodeView(r, config, now).contact).join('\n') + '\n');
        });
      });
    });
}

/** The lines of `node show` for one node: `  key  value  (source)`. */
export function showLines(r: ResolvedNode, contact: string): string[] {
  const rows: Array<[string, string, string]> = [
    ['nodeid', r.nodeid, ''],
    ['group', r.group, r.sources.group ?? ''],
    ['vnfs', r.vnfs || '(none)', r.sources.vnfs ?? ''],
    ['enabled', yesNo(r.enabled), r.sources.enabled ?? ''],
    ['debug', String(r.debug), r.sources.debug ?? ''],
    ['boot', r.boot, r.sources.boot ?? ''],
    ['ipaddr', r.ipaddr ?? '(dhcp)', r.sources.ipaddr ?? ''],
    ['desc', r.desc ?? '-', r.sources.desc ?? ''],
    ['state', r.state ?? '(none yet)', ''],
    ['lastaddr', r.lastaddr ?? '-', ''],
    ['lastcontact', r.lastcontact === null ? 'never' : `${new Date(r.lastcontact).toISOString()} (${contact})`, ''],
  ];
  for (const k of Object.keys(r.attrs).sort()) rows.push([k, shown(k, r.attrs[k]!), r.sources[`attrs.${k}`] ?? '']);
  const kw = Math.max(...rows.map((x) => x[0].length));
  const vw = Math.max(...rows.map((x) => x[1].length));
  return [r.name, ...rows.map(([k, v, s]) => `  ${k.padEnd(kw)}  ${s ? `${v.padEnd(vw)}  (${s})` : v}`.trimEnd())];
}
