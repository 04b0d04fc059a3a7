/**
 * Which stage-1 kernel and initramfs a node boots, and which files `GET /boot/<path>` may serve:
 * the node's VNFS carries its own when `vnfs/<NAME>/vmlinuz` and `initramfs.img` exist, else the
 * common ones in the TFTP root; loader names fall back to the packaged iPXE binaries (UEFI HTTP
 * boot fetches `snponly.efi`/`ipxe.efi` over HTTP).
 */
import { join } from 'node:path';
import { isPlainName } from '../util/names.js';
import { fileUnderRoot, resolveLoader } from './loaders.js';
import type { Stage1 } from './ipxe-script.js';

export const KERNEL_FILE = 'vmlinuz';
export const INITRD_FILE = 'initramfs.img';

/** The stage-1 of a node with VNFS `vnfs` (may be empty). */
export async function stage1For(statedir: string, vnfs: string): Promise<Stage1> {
  if (vnfs && isPlainName(vnfs)) {
    const dir = join(statedir, 'vnfs', vnfs);
    const [k, i] = await Promise.all([fileUnderRoot(dir, KERNEL_FILE), fileUnderRoot(dir, INITRD_FILE)]);
    if (k && i) return { kernel: `vnfs/${vnfs}/${KERNEL_FILE}`, initrd: `vnfs/${vnfs}/${INITRD_FILE}` };
  }
  return { kernel: KERNEL_FILE, initrd: INITRD_FILE };
}

/**
 * The file behind `/boot/<segments>` (segments already decoded and vetted): `vnfs/NAME/vmlinuz|initramfs.img`
 * from the VNFS, anything else from the TFTP root or the packaged loaders. Null when there is none.
 */
export async function bootFilePath(statedir: string, tftpRoot: string, segments: readonly string[], loaderDirs?: readonly string[]): Promise<string | null> {
  if (segments[0] === 'vnfs') {
    const [, name, file] = segments;
    if (segments.length !== 3 || !name || !isPlainName(name) || (file !== KERNEL_FILE && file !== INITRD_FILE)) return null;
    return (await fileUnderRoot(join(statedir, 'vnfs', name), file))?.path ?? null;
  }
  const hit = await resolveLoader(segments.join('/'), { root: tftpRoot, dirs: loaderDirs });
  return hit?.path ?? null;
}
