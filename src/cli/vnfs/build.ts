/** `provisiond vnfs build <NAME> --distro debian:SUITE | --from DIR | --busybox` and `vnfs image <NAME>`. */
import type { Command } from 'commander';
import { cliContext } from '../context.js';
import { ProvisiondError, UsageError } from '../../util/errors.js';
import { cliRunner, interruptCancels, submitTask } from '../task/shared.js';
import { buildImage } from '../../vnfs/index.js';
import { copyChroot, findRecipe, makeBusyboxRootfs, replaceRootfs } from '../../vnfs/build.js';
import { fetchBusybox } from '../../vnfs/debian-fetch.js';
import { cliLogger, withRegistry } from '../node/shared.js';
import { progress, size } from './shared.js';
import { capsuleDir } from '../../vnfs/capsule.js';
import { buildDistroVnfs } from './distro.js';

interface BuildOptions {
  distro?: string;
  packages?: string;
  mirror?: string;
  kernelPackage?: string;
  from?: string;
  busybox?: boolean;
  busyboxBinary?: string;
  image?: boolean;
}

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

/** `vnfs image NAME` as a task (in the registry, visible to the API): its last message is what was built. */
async function imageTask(name: string, cmd: Command): Promise<void> {
  await withRegistry(cmd, async (reg, ctx, config) => {
    const runner = cliRunner(reg, config, cliLogger(ctx.err));
    try {
      const task = await submitTask(runner, ctx.err, { action: 'vnfs-image', params: { vnfs: name } });
      const release = interruptCancels(runner, task.id, ctx.err);
      const done = await runner.wait(task.id).finally(release);
      const last = done.messages.at(-1)?.message ?? done.status;
      if (done.result !== 'success') throw new ProvisiondError(last);
      ctx.out.write(`${last}\n`);
    } finally {
      await runner.close();
    }
  });
}

export function register(vnfs: Command): void {
  vnfs
    .command('build')
    .description('make the rootfs of VNFS <name>: a Debian root with systemd and its own kernel (--distro), a chroot (--from) or a busybox recipe (--busybox), then build its image')
    .argument('<name>', 'VNFS name (created when missing)')
    .option('--distro <family:suite>', 'a Debian root made by mmdebstrap (debootstrap as fallback), e.g. debian:bookworm')
    .option('--packages <a,b>', 'with --distro: more Debian packages to install')
    .option('--mirror <url>', 'with --distro: the Debian mirror (default: config vnfs.mirror, else the machine\'s apt sources)')
    .option('--kernel-package <pkg>', 'with --distro: the kernel installed inside (default linux-image-amd64; linux-image-cloud-amd64 for VMs)')
    .option('--from <dir>', 'copy this root file system (cp -a; ownership and device nodes kept when root)')
    .option('--busybox', 'a tiny busybox root from the recipe (vnfs/<name>/recipe, else the shipped demo recipe)')
    .option('--busybox-binary <file>', 'static busybox to use (default: Debian busybox-static from the cache)')
    .option('--no-image', 'do not build the image now')
    .action(async (name: string, opts: BuildOptions, cmd: Command) => {
      const ctx = cliContext(cmd);
      capsuleDir(ctx.config().statedir, name);
      const statedir = ctx.config().statedir;
      if ([opts.from, opts.busybox, opts.distro].filter(Boolean).length !== 1) throw new UsageError('give exactly one of --distro debian:SUITE, --from DIR or --busybox');
      if (!opts.distro && (opts.packages || opts.mirror || opts.kernelPackage)) throw new UsageError('--packages, --mirror and --kernel-package go with --distro');
      if (opts.distro) {
        await buildDistroVnfs(ctx, name, { distro: opts.distro, packages: opts.packages, mirror: opts.mirror, kernelPackage: opts.kernelPackage });
      } else if (opts.from) {
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
    .action(async (name: string, _opts: unknown, cmd: Command) => imageTask(name, cmd));
}
