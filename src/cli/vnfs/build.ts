/** `provisiond vnfs build <NAME> --from DIR | --busybox` and `vnfs image <NAME>`. */
import type { Command } from 'commander';
import { cliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';
import { buildImage } from '../../vnfs/index.js';
import { copyChroot, findRecipe, makeBusyboxRootfs, replaceRootfs } from '../../vnfs/build.js';
import { fetchBusybox } from '../../vnfs/debian-fetch.js';
import { cliLogger } from '../node/shared.js';
import { progress, size } from './shared.js';
import { capsuleDir } from '../../vnfs/capsule.js';

async function image(name: string, cmd: Command): Promise<void> {
  const ctx = cliContext(cmd);
  let bar: ReturnType<typeof progress> | undefined;
  let last = 0;
  const r = await buildImage(ctx.config().statedir, name, cliLogger(ctx.err), (p) => {
    bar ??= progress(ctx.err, `image of ${name}`, 0);
    bar.add(p.bytesIn - last);
    last = p.bytesIn;
  });
  bar?.done();
  ctx.out.write(`${r.path}  ${size(r.bytes)}  ${r.entries} entries  sha256 ${r.sha256}\n`);
}

export function register(vnfs: Command): void {
  vnfs
    .command('build')
    .description('make the rootfs of VNFS <name>: from a chroot (--from, e.g. made by debootstrap) or a busybox recipe (--busybox), then build its image')
    .argument('<name>', 'VNFS name (created when missing)')
    .option('--from <dir>', 'copy this root file system (cp -a; ownership and device nodes kept when root)')
    .option('--busybox', 'a tiny busybox root from the recipe (vnfs/<name>/recipe, else the shipped demo recipe)')
    .option('--busybox-binary <file>', 'static busybox to use (default: Debian busybox-static from the cache)')
    .option('--no-image', 'do not build the image now')
    .action(async (name: string, opts: { from?: string; busybox?: boolean; busyboxBinary?: string; image?: boolean }, cmd: Command) => {
      const ctx = cliContext(cmd);
      const statedir = ctx.config().statedir;
      capsuleDir(statedir, name);
      if (!opts.from === !opts.busybox) throw new UsageError('give exactly one of --from DIR or --busybox');
      if (opts.from) {
        const from = opts.from;
        await replaceRootfs(statedir, name, (dir) => copyChroot(from, dir));
        ctx.err.write(`vnfs ${name}: rootfs copied from ${from}\n`);
      } else {
        const recipe = findRecipe(statedir, name);
        const busybox = opts.busyboxBinary ?? (await fetchBusybox((m) => void ctx.err.write(`${m}\n`)));
        await replaceRootfs(statedir, name, (dir) => makeBusyboxRootfs(dir, busybox, recipe));
        ctx.err.write(`vnfs ${name}: busybox rootfs from ${recipe}\n`);
      }
      if (opts.image !== false) await image(name, cmd);
    });
  vnfs
    .command('image')
    .description('build the node image of a VNFS now (image.cpio.gz + .sha256); nodes asking for a stale image trigger this themselves')
    .argument('<name>', 'VNFS name')
    .action(async (name: string, _opts: unknown, cmd: Command) => image(name, cmd));
}
