/** `provisiond vnfs import <FILE | oci-archive:FILE | docker-archive:FILE | oci:DIR>` and `vnfs export <NAME> <FILE>`. */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';
import { capsuleDir } from '../../vnfs/index.js';
import { exportCapsule, importCapsule } from '../../vnfs/capsule-ops.js';
import { importImage, parseImageSource } from '../../vnfs/oci.js';
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
    .description('import a VNFS: a capsule file (.vnfs: tar, tar.gz, or a Perceus bzip2 capsule; its nodescripts are linked into nodescripts/<state>/vnfs/<NAME>/) or a container image (oci-archive:FILE[:TAG], docker-archive:FILE[:TAG], oci:DIR[:TAG])')
    .argument('<source>', 'capsule file, or oci-archive:FILE[:TAG] (podman save --format oci-archive), docker-archive:FILE[:TAG] (docker save), oci:DIR[:TAG] (an OCI image layout)')
    .option('--name <name>', 'VNFS name (default: the file or folder name without .vnfs, .tar, .oci)')
    .option('--force', 'replace an existing VNFS of that name')
    .action(async (file: string, opts: { name?: string; force?: boolean }, cmd: Command) => {
      const ctx = cliContext(cmd);
      const image = parseImageSource(file);
      let name: string;
      if (image) {
        const r = await importImage(ctx.config().statedir, image, opts);
        ctx.out.write(`imported vnfs ${r.name} from ${r.source}${r.reference ? ` (${r.reference})` : ''}: ${r.layers} layers, ${r.entries} entries, ${size(r.bytes)}, ${r.whiteouts} whiteouts applied\n`);
        name = r.name;
        if (r.noInit) ctx.err.write(`warning: vnfs ${r.name} has no sbin/init: a node cannot boot it as it is (install an init, e.g. systemd, in the image)\n`);
      } else {
        if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
        const r = await importCapsule(ctx.config().statedir, file, opts);
        ctx.out.write(`imported vnfs ${r.name}: ${r.entries} entries, ${size(r.bytes)}${r.perceus ? ' (Perceus capsule: config converted, original kept as config.perceus)' : ''}\n`);
        for (const l of r.links) ctx.out.write(`  linked ${l}\n`);
        name = r.name;
      }
      ctx.out.write(`build its image with: provisiond vnfs image ${name} (or let the first node that asks trigger it)\n`);
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
