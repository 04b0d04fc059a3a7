/**
 * Making a capsule's rootfs: from a busybox recipe (`vnfs build NAME --busybox`: a static busybox,
 * its applet links, and the recipe's overlay/ files) or from a chroot made by any tool
 * (`vnfs build NAME --from DIR`, e.g. debootstrap's). The new rootfs is assembled beside the old one
 * and swapped in with renames, so a failed build leaves the capsule as it was.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, rename, rm, symlink, copyFile, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ProvisiondError } from '../util/errors.js';
import { capsuleDir, writeCapsuleConfig } from './capsule.js';

const run = promisify(execFile);

/** The repository's `vnfs/` folder, holding the shipped recipes (vnfs/demo/recipe). */
export const SHIPPED_VNFS = fileURLToPath(new URL('../../vnfs/', import.meta.url));

/** The recipe folder for VNFS `name`: the capsule's own recipe/, else the shipped one of that name, else the demo's. */
export function findRecipe(statedir: string, name: string): string {
  const candidates = [join(capsuleDir(statedir, name), 'recipe'), join(SHIPPED_VNFS, name, 'recipe'), join(SHIPPED_VNFS, 'demo', 'recipe')];
  const hit = candidates.find((c) => existsSync(c));
  if (!hit) throw new ProvisiondError(`no recipe for vnfs ${name} (looked in ${candidates.join(', ')})`);
  return hit;
}

const BASE_DIRS = ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp', 'root', 'var/log', 'var/run', 'home', 'mnt'];

/** Writes a busybox root file system into `dest` (which must not exist). */
export async function makeBusyboxRootfs(dest: string, busybox: string, recipe: string): Promise<void> {
  for (const d of BASE_DIRS) await mkdir(join(dest, d), { recursive: true, mode: 0o755 });
  await chmod(join(dest, 'tmp'), 0o1777);
  await copyFile(busybox, join(dest, 'bin/busybox'));
  await chmod(join(dest, 'bin/busybox'), 0o755);
  const { stdout } = await run(busybox, ['--list-full']);
  for (const applet of stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
    if (applet === 'bin/busybox' || applet.includes('..')) continue;
    const at = join(dest, applet);
    await mkdir(dirname(at), { recursive: true });
    if (!existsSync(at)) await symlink(relative(dirname(`/${applet}`), '/bin/busybox'), at);
  }
  const overlay = join(recipe, 'overlay');
  if (existsSync(overlay)) await run('cp', ['-a', '--remove-destination', `${overlay}/.`, dest]);
}

/** Copies a chroot into `dest` with cp -a (ownership, modes, links, device nodes as root, sparse files). */
export async function copyChroot(from: string, dest: string): Promise<void> {
  const st = await stat(from).catch(() => null);
  if (!st?.isDirectory()) throw new ProvisiondError(`--from ${from}: not a directory`);
  if (!existsSync(join(from, 'sbin/init')) && !existsSync(join(from, 'usr/sbin/init')) && !existsSync(join(from, 'init'))) {
    throw new ProvisiondError(`--from ${from}: no sbin/init in it: not a root file system a node can boot`);
  }
  await mkdir(dest, { recursive: true });
  try {
    await run('cp', ['-a', '--one-file-system', `${from}/.`, dest], { maxBuffer: 16 << 20 });
  } catch (err) {
    throw new ProvisiondError(`copying ${from}: ${((err as { stderr?: string }).stderr ?? '').trim().split('\n')[0] || (err as Error).message}`, { cause: err });
  }
}

/**
 * Replaces VNFS `name`'s rootfs with what `fill(dir)` writes into a fresh folder; creates the
 * capsule (and a default config, or the shipped one of that name) when it does not exist.
 */
export async function replaceRootfs(statedir: string, name: string, fill: (dir: string) => Promise<void>): Promise<string> {
  const dir = capsuleDir(statedir, name);
  await mkdir(dir, { recursive: true });
  if (!existsSync(join(dir, 'config'))) {
    const shipped = join(SHIPPED_VNFS, name, 'config');
    if (existsSync(shipped) && shipped !== join(dir, 'config')) await copyFile(shipped, join(dir, 'config'));
    else await writeCapsuleConfig(dir, {});
  }
  const fresh = join(dir, `rootfs.tmp-${process.pid}`);
  const old = join(dir, `rootfs.old.tmp-${process.pid}`);
  await rm(fresh, { recursive: true, force: true });
  try {
    await fill(fresh);
  } catch (err) {
    await rm(fresh, { recursive: true, force: true });
    throw err;
  }
  const rootfs = join(dir, 'rootfs');
  if (existsSync(rootfs)) await rename(rootfs, old);
  await rename(fresh, rootfs);
  await rm(old, { recursive: true, force: true });
  return rootfs;
}
