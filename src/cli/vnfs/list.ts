/** `provisiond vnfs list`: each capsule with its image size and age and the nodes using it. */
import type { Command } from 'commander';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cliContext } from '../context.js';
import { age, printJson, printTable } from '../node/output.js';
import { IMAGE_FILE, capsuleDir, listVnfsNames, readCapsuleConfig } from '../../vnfs/index.js';
import { nodesByVnfs, size } from './shared.js';

export function register(vnfs: Command): void {
  vnfs
    .command('list')
    .alias('ls')
    .description('list VNFS capsules: name, image size, image age, nodes using it, description')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const ctx = cliContext(cmd);
      const config = ctx.config();
      const users = await nodesByVnfs(config, ctx.err);
      const now = Date.now();
      const rows = [];
      for (const name of await listVnfsNames(config.statedir)) {
        const img = await stat(join(capsuleDir(config.statedir, name), IMAGE_FILE)).catch(() => null);
        const desc = await readCapsuleConfig(config.statedir, name).then((c) => c.description, (e: Error) => `(bad config: ${e.message})`);
        const nodes = users?.get(name) ?? [];
        rows.push({ name, imageBytes: img?.size ?? null, imageBuilt: img?.mtimeMs ?? null, nodes: users ? nodes.length : null, nodeNames: nodes, description: desc });
      }
      if (opts.json) return printJson(ctx.out, rows);
      printTable(ctx.out, ['NAME', 'IMAGE', 'BUILT', 'NODES', 'DESCRIPTION'], rows.map((r) => [
        r.name,
        r.imageBytes === null ? 'not built' : size(r.imageBytes),
        r.imageBuilt === null ? '-' : age(now - r.imageBuilt),
        r.nodes === null ? '?' : String(r.nodes),
        r.description,
      ]));
    });
}
