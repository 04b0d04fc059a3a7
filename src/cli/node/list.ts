/** `provisiond node list [PATTERN...]`: the nodes as a table, `--json`, or `--unknown` machines. */
import type { Command } from 'commander';
import { age, printJson, printTable, yesNo } from './output.js';
import { currentImages } from '../../vnfs/index.js';
import { selectNodes, withRegistry } from './shared.js';
import { nodeView, resolveAll, shownAddress } from '../../nodes/view.js';

interface ListOptions {
  json?: boolean;
  unknown?: boolean;
  nodeid?: boolean;
}

export function register(node: Command): void {
  node
    .command('list')
    .alias('ls')
    .description('list nodes: name, nodeid, group, vnfs, enabled, state, address, last contact')
    .argument('[pattern...]', 'node names or patterns (n00[01-16], n00*); default all')
    .option('-i, --nodeid', 'patterns match hardware addresses instead of names')
    .option('--json', 'print JSON (every field, secrets masked)')
    .option('--unknown', 'list hardware addresses seen on the network but not registered')
    .action(async (patterns: string[], opts: ListOptions, cmd: Command) => {
      await withRegistry(cmd, async (reg, ctx, config) => {
        const now = Date.now();
        if (opts.unknown) {
          const unknown = await reg.listUnknown();
          if (opts.json) return printJson(ctx.out, unknown);
          const rows = unknown.map((u) => [u.nodeid, u.lastaddr ?? '-', u.via, age(now - u.firstseen), age(now - u.lastseen), String(u.count)]);
          return printTable(ctx.out, ['NODEID', 'ADDRESS', 'SEEN BY', 'FIRST SEEN', 'LAST SEEN', 'COUNT'], rows);
        }
        const nodes = await selectNodes(reg, patterns, { byNodeid: opts.nodeid, allIfNone: true });
        const resolved = await resolveAll(reg, config, nodes);
        const images = opts.json ? await currentImages(config.statedir, resolved.map((r) => r.vnfs).filter(Boolean)) : undefined;
        const views = resolved.map((r) => nodeView(r, config, now, images));
        if (opts.json) return printJson(ctx.out, views);
        const rows = views.map((v) => [v.name, v.nodeid, v.group, v.vnfs || '-', yesNo(v.enabled), v.state ?? '-', shownAddress(v), v.contact]);
        const headers = ['NAME', 'NODEID', 'GROUP', 'VNFS', 'ENABLED', 'STATE', 'ADDRESS', 'LAST CONTACT'];
        // Allocated nodes (node allocate, the API's /allocations): who has them, as a last column.
        if (views.some((v) => v.owner !== null)) {
          headers.push('OWNER');
          views.forEach((v, i) => rows[i]!.push(v.owner ?? '-'));
        }
        printTable(ctx.out, headers, rows);
      });
    });
}
