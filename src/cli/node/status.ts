/** `provisiond node status [PATTERN...]` and `node summary` (counts by group and state). */
import type { Command } from 'commander';
import { compareNames } from '../../util/patterns.js';
import { printJson, printTable, timedOut } from './output.js';
import { selectNodes, withRegistry } from './shared.js';
import { statusColumns, type StatusContext } from './status-columns.js';
import { resolveAll } from '../../nodes/view.js';

export function register(node: Command): void {
  node
    .command('status')
    .description('what each node is doing: state, last contact, address, vnfs')
    .argument('[pattern...]', 'node names or patterns; default all')
    .option('-i, --nodeid', 'patterns match hardware addresses instead of names')
    .option('--json', 'print JSON')
    .action(async (patterns: string[], opts: { nodeid?: boolean; json?: boolean }, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx, config) => {
        const resolved = await resolveAll(reg, config, await selectNodes(reg, patterns, { byNodeid: opts.nodeid, allIfNone: true }));
        const sc: StatusContext = { config, registry: reg, now: Date.now() };
        const rows = await Promise.all(resolved.map((r) => Promise.all(statusColumns.map((c) => c.value(r, sc)))));
        if (opts.json) {
          return printJson(ctx.out, rows.map((r) => Object.fromEntries(statusColumns.map((c, i) => [c.key, r[i]]))));
        }
        printTable(ctx.out, statusColumns.map((c) => c.header), rows);
      });
    });

  node
    .command('summary')
    .description('count nodes by group and state')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx, config) => {
        const resolved = await resolveAll(reg, config, await reg.listNodes());
        const now = Date.now();
        const groups = new Map<string, { nodes: number; disabled: number; timedOut: number; states: Map<string, number> }>();
        const total = { nodes: 0, disabled: 0, timedOut: 0, states: new Map<string, number>() };
        for (const r of resolved) {
          const g = groups.get(r.group) ?? { nodes: 0, disabled: 0, timedOut: 0, states: new Map<string, number>() };
          groups.set(r.group, g);
          const state = r.state ?? 'never seen';
          for (const c of [g, total]) {
            c.nodes++;
            if (!r.enabled) c.disabled++;
            if (timedOut(r.lastcontact, config.node.timeout, now)) c.timedOut++;
            c.states.set(state, (c.states.get(state) ?? 0) + 1);
          }
        }
        const names = [...groups.keys()].sort(compareNames);
        const states = (s: Map<string, number>) => [...s].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k, n]) => `${k} ${n}`).join(', ');
        if (opts.json) {
          const obj = (c: typeof total) => ({ nodes: c.nodes, disabled: c.disabled, timedOut: c.timedOut, states: Object.fromEntries(c.states) });
          return printJson(ctx.out, { groups: Object.fromEntries(names.map((n) => [n, obj(groups.get(n)!)])), total: obj(total) });
        }
        const rows = names.map((n) => {
          const g = groups.get(n)!;
          return [n, String(g.nodes), String(g.disabled), String(g.timedOut), states(g.states)];
        });
        rows.push(['total', String(total.nodes), String(total.disabled), String(total.timedOut), states(total.states)]);
        printTable(ctx.out, ['GROUP', 'NODES', 'DISABLED', 'TIMED OUT', 'STATES'], rows);
      });
    });
}
