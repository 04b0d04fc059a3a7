/** `provisiond vnfs import <FILE>` and `vnfs export <NAME> <FILE>`: capsule files. */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';
import { capsuleDir } from '../../vnfs/index.js';
import { exportCapsule, importCapsule } from '../../vnfs/capsule-ops.js';
import { progress, size } from './shared.js';

async function treeBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += await treeBytes(p);
    else if (e.isFile()) n += (await lstat(p)).size;
  }
  return n;
}

export function register(vnfs: Command): void {
  vnfs
    .command('import')
    .description('import a VNFS capsule file (.vnfs: tar, tar.gz, or a Perceus bzip2 capsule); its nodescripts are linked into nodescripts/<state>/vnfs/<NAME>/')
    .argument('<file>', 'capsule file')
    .option('--name <name>', 'VNFS name (default: the file name without .vnfs)')
    .option('--force', 'replace an existing VNFS of that name')
    .action(async (file: string, opts: { name?: string; force?: boolean }, cmd: Command) => {
      const ctx = cliContext(cmd);
      if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
      const r = await importCapsule(ctx.config().statedir, file, opts);
      ctx.out.write(`imported vnfs ${r.name}: ${r.entries} entries, ${size(r.bytes)}${r.perceus ? ' (Perceus capsule: config converted, original kept as config.perceus)' : ''}\n`);
      for (const l of r.links) ctx.out.write(`  linked ${l}\n`);
      ctx.out.write(`build its image with: provisiond vnfs image ${r.name} (or let the first node that asks trigger it)\n`);
    });
  vnfs
    .command('export')
    .description('write a VNFS as a capsule file (gzip-compressed tar, without the built image)')
    .argument('<name>', 'VNFS name')
    .argument('<file>', 'capsule file to write (e.g. NAME.vnfs)')
    .action(async (name: string, file: string, _opts: unknown, cmd: Command) => {
      const ctx = cliContext(cmd);
      const dir = capsuleDir(ctx.config().statedir, name);
      if (!existsSync(dir)) throw new UsageError(`no vnfs ${name}`);
      const bar = progress(ctx.err, `exporting ${name}`, await treeBytes(dir));
      await exportCapsule(ctx.config().statedir, name, file, (n) => bar.add(n));
      bar.done();
      ctx.out.write(`wrote ${file} (${size((await lstat(file)).size)})\n`);
    });
}
