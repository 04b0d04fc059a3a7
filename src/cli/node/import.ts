/**
 * `provisiond node import <FILE>`: `MAC name` lines (ethers) or CSV with a header; all or nothing in
 * one transaction, an error names the file and line.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ImportEntryError } from '../../registry/errors.js';
import { parseNodeList } from '../../registry/node-list.js';
import { NamePatternExhaustedError, type NewNode } from '../../registry/types.js';
import { ProvisiondError, UsageError } from '../../util/errors.js';
import { nextFreeName } from '../../util/patterns.js';
import { withRegistry } from './shared.js';

export function register(node: Command): void {
  node
    .command('import')
    .description('add the nodes listed in FILE ("MAC name" lines, or CSV with a header nodeid,name,group,vnfs,ipaddr): all or none')
    .argument('<file>', 'the list; - reads standard input')
    .action(async (file: string, _opts: unknown, cmd: Command) => {
      let text: string;
      try {
        text = readFileSync(file === '-' ? 0 : file, 'utf8');
      } catch (err) {
        throw new UsageError(`reading ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
      }
      const listed = parseNodeList(text, file);
      if (listed.length === 0) throw new UsageError(`${file}: no nodes listed`);
      await withRegistry(cmd, async (reg, ctx, config) => {
        const taken = new Set((await reg.listNodes()).map((n) => n.name));
        for (const l of listed) if (l.node.name !== null) taken.add(l.node.name);
        const d = config.defaults;
        const nodes: NewNode[] = listed.map(({ node }) => {
          let name = node.name;
          if (name === null) {
            name = nextFreeName(d.nodeName, d.firstNode, d.totalNodes, (n) => taken.has(n));
            if (name === null) throw new NamePatternExhaustedError(`${file}: no free name left in pattern ${d.nodeName} for the unnamed nodes`);
            taken.add(name);
          }
          return { ...node, name, group: node.group ?? d.group };
        });
        let count: number;
        try {
          count = await reg.importNodes(nodes);
        } catch (err) {
          if (err instanceof ImportEntryError) {
            const line = listed[err.index]!.line;
            throw new ProvisiondError(`${file}:${line}: ${err.message.replace(/^entry \d+( \([^)]*\))?: /, '')} (nothing imported)`, { cause: err });
          }
          throw err;
        }
        ctx.out.write(`imported ${count} node${count === 1 ? '' : 's'} from ${file}\n`);
      });
    });
}
