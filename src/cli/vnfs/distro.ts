/** `vnfs build NAME --distro debian:SUITE`: the cached (or freshly bootstrapped) Debian tree becomes the rootfs. */
import { join } from 'node:path';
import type { CliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';
import { capsuleDir, readCapsuleConfig, writeCapsuleConfig } from '../../vnfs/capsule.js';
import { copyChroot, replaceRootfs } from '../../vnfs/build.js';
import {
  DEFAULT_KERNEL_PACKAGE, distroTree, findBootKernel, machineMirror, parseDistro, parsePackages, recipePackages,
  type DistroProgress, type DistroRecipe,
} from '../../vnfs/distro.js';

export interface DistroOptions {
  distro: string;
  packages?: string;
  mirror?: string;
  kernelPackage?: string;
}

/** Progress of a bootstrap: one redrawn line on a terminal, one line per phase otherwise. */
function reporter(err: NodeJS.WritableStream & { isTTY?: boolean }, what: string): { on(p: DistroProgress): void; done(): void } {
  const tty = err.isTTY === true;
  let phase = 'starting';
  let counts = { fetched: 0, unpacked: 0, configured: 0 };
  const draw = (): void => {
    err.write(`\r\x1b[K${what}: ${counts.fetched} packages fetched, ${counts.unpacked} unpacked, ${counts.configured} set up (${phase})`);
  };
  return {
    on(p) {
      if ('phase' in p) {
        phase = p.phase;
        if (tty) draw();
        else err.write(`${what}: ${p.phase}\n`);
        return;
      }
      counts = p;
      if (tty) draw();
    },
    done() {
      if (tty) err.write('\n');
      else err.write(`${what}: ${counts.fetched} packages fetched, ${counts.unpacked} unpacked, ${counts.configured} set up\n`);
    },
  };
}

/** Builds VNFS `name`'s rootfs from a Debian recipe and points its config at the kernel inside. */
export async function buildDistroVnfs(ctx: CliContext, name: string, opts: DistroOptions): Promise<void> {
  const distro = parseDistro(opts.distro);
  const packages = parsePackages(opts.packages);
  const [kernelPackage = DEFAULT_KERNEL_PACKAGE, ...more] = parsePackages(opts.kernelPackage ?? DEFAULT_KERNEL_PACKAGE);
  if (more.length > 0) throw new UsageError('--kernel-package: one package');
  const config = ctx.config();
  const mirror = (opts.mirror ?? config.vnfs.mirror ?? (await machineMirror(distro.suite))).replace(/\/+$/, '');
  if (!/^(https?|file):\/\/\S+$/.test(mirror)) throw new UsageError(`--mirror ${mirror}: expected an http://, https:// or file:// URL`);
  const recipe: DistroRecipe = { distro, kernelPackage, packages, mirror };
  const what = `debian ${distro.suite}`;
  ctx.err.write(`${what}: ${recipePackages(recipe).length} packages asked (${recipePackages(recipe).join(' ')}) from ${mirror}\n`);
  const started = Date.now();
  const rep = reporter(ctx.err, what);
  const { tree, cached } = await distroTree(recipe, (p) => rep.on(p));
  if (!cached) rep.done();
  ctx.err.write(cached ? `${what}: cached tree ${tree}\n` : `${what}: built in ${Math.round((Date.now() - started) / 1000)} s, cached as ${tree}\n`);
  const statedir = config.statedir;
  const rootfs = await replaceRootfs(statedir, name, (dir) => copyChroot(tree, dir));
  const kernel = await findBootKernel(rootfs);
  if (!kernel) throw new UsageError(`vnfs ${name}: no /boot/vmlinuz-* in the tree: is ${kernelPackage} a kernel package?`);
  const current = await readCapsuleConfig(statedir, name);
  await writeCapsuleConfig(capsuleDir(statedir, name), {
    ...current,
    description: current.description || `Debian ${distro.suite} with systemd, kernel ${kernel.version}`,
    kernel: kernel.kernel,
    initrd: kernel.initrd,
  });
  ctx.err.write(`vnfs ${name}: rootfs from ${what} (${join(capsuleDir(statedir, name), 'rootfs')}), kernel ${kernel.kernel}\n`);
}
