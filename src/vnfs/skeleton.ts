/**
 * The skeleton of a VNFS that boots its own kernel: a small gzip cpio beside `image.cpio.gz` with
 * what the stage-1 needs to prepare a kexec boot without unpacking the whole image. The VNFS's
 * kernel unpacks the image itself (it is the kexec initramfs), so unpacking it in the stage-1 too
 * did the largest piece of work of the boot twice (about 26 s of a 61 s boot under TCG).
 *
 * It holds every entry of the root's top level (the directories without their contents, the
 * `bin -> usr/bin` style links), all of `etc/` (what the nodescripts customise), the kernel named
 * by the capsule config and the paths the shipped nodescripts look at (`sbin/init`, systemd,
 * systemd-networkd's units), each with the directories and symbolic links on the way to it,
 * followed inside the root. Entries keep the image's metadata, so the stage-1 tells what the
 * nodescripts changed by modification time, as it does after a whole unpack.
 */
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, open, readdir, readlink, rename, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { CpioStreamWriter, bytewise } from './cpio-tree.js';
import { ParallelGzip } from './pgzip.js';

/** Paths inside the root the shipped nodescripts test (49-hostname .. 99-boot), besides `etc/`. */
export const SKELETON_PROBES = ['sbin/init', 'lib/systemd/systemd', 'lib/systemd/system/systemd-networkd.service', 'lib/systemd/system/systemd-networkd.socket'];

/** Symbolic links followed at most, per probe (as the kernel's MAXSYMLINKS). */
const MAX_LINKS = 40;

class SkeletonWriter {
  readonly #seen = new Set<string>();

  constructor(
    readonly root: string,
    readonly cpio: CpioStreamWriter,
  ) {}

  /** Adds one entry once; its Stats, or null when it does not exist. */
  async add(rel: string): Promise<Stats | null> {
    const st = await lstat(join(this.root, rel)).catch(() => null);
    if (!st || st.isSocket()) return null;
    if (!this.#seen.has(rel)) {
      this.#seen.add(rel);
      await this.cpio.addPath(join(this.root, rel), rel, st);
    }
    return st;
  }

  /** Adds `rel` and everything below it, sorted as the image is. */
  async addAll(rel: string): Promise<void> {
    const st = await this.add(rel);
    if (!st?.isDirectory()) return;
    for (const name of (await readdir(join(this.root, rel))).sort(bytewise)) await this.addAll(`${rel}/${name}`);
  }

  /**
   * Adds `rel` with every directory and symbolic link on the way, resolving links inside the root
   * (an absolute target is relative to the root, `..` stops at it). A missing path adds what exists.
   */
  async addResolved(rel: string, links = 0): Promise<void> {
    // Normalized from the root: a `..` in a config's kernel path cannot leave it.
    const parts = posix.normalize(`/${rel}`).split('/').filter((p) => p !== '');
    let dir = '';
    for (const [i, part] of parts.entries()) {
      const path = dir ? `${dir}/${part}` : part;
      const st = await this.add(path);
      if (!st) return;
      if (st.isSymbolicLink()) {
        if (links >= MAX_LINKS) return;
        const target = await readlink(join(this.root, path));
        const next = posix.normalize(`/${target.startsWith('/') ? '' : dir}/${target}/${parts.slice(i + 1).join('/')}`).replace(/^\/+|\/+$/g, '');
        if (next !== '') await this.addResolved(next, links + 1);
        return;
      }
      dir = path;
    }
  }
}

/**
 * Writes the skeleton of `rootfs` to `out` (atomically: temp file + rename). `kernel` is the
 * capsule config's path of the VNFS's kernel inside the root (`/boot/vmlinuz-...`).
 */
export async function writeSkeleton(rootfs: string, out: string, { kernel, level }: { kernel: string; level?: number }): Promise<{ sha256: string; bytes: number; entries: number }> {
  const tmp = `${out}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'wx', 0o644);
  try {
    const gz = new ParallelGzip(fh, { level });
    const cpio = new CpioStreamWriter(gz);
    const w = new SkeletonWriter(rootfs, cpio);
    for (const name of (await readdir(rootfs)).sort(bytewise)) await w.add(name);
    await w.addAll('etc');
    for (const probe of [kernel, ...SKELETON_PROBES]) await w.addResolved(probe);
    await cpio.finish();
    const { sha256, bytes } = await gz.end();
    await fh.sync();
    await fh.close();
    await rename(tmp, out);
    return { sha256, bytes, entries: cpio.entries };
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
}
