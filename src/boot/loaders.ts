/**
 * Boot loaders: where this machine's iPXE binaries are, and which file a requested loader name
 * means. PXE firmware can only fetch its first loader over TFTP (or HTTP for UEFI HTTP boot), so
 * provisiond serves the distribution's iPXE (Debian package `ipxe`) straight from where the package
 * put it: nothing to copy, and `apt upgrade` updates it. The admin's own file in the TFTP root always
 * wins, so a custom iPXE build (embedded script, extra drivers) or another loader is a drop-in.
 */
import { realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { normalizeRequestPath } from '../protocol/tftp/path.js';

/** Directories searched for packaged loaders, in order (Debian/Ubuntu, then Fedora/RHEL/SUSE). */
export const DEFAULT_LOADER_DIRS: readonly string[] = ['/usr/lib/ipxe', '/usr/share/ipxe', '/usr/lib/PXELINUX', '/usr/lib/syslinux/modules/bios'];

/**
 * Loader names provisiond knows, with the file names distributions give them. Debian ships
 * `ipxe.efi` and `snponly.efi`; Fedora names the same builds `ipxe-x86_64.efi` and
 * `ipxe-snponly-x86_64.efi`. A request for either name finds whichever is installed.
 */
export const KNOWN_LOADERS: Readonly<Record<string, readonly string[]>> = {
  'undionly.kpxe': ['undionly.kpxe'],
  'undionly.kkpxe': ['undionly.kkpxe'],
  'ipxe.pxe': ['ipxe.pxe'],
  'ipxe.lkrn': ['ipxe.lkrn'],
  'ipxe.efi': ['ipxe.efi', 'ipxe-x86_64.efi'],
  'ipxe-x86_64.efi': ['ipxe-x86_64.efi', 'ipxe.efi'],
  'snponly.efi': ['snponly.efi', 'ipxe-snponly-x86_64.efi'],
  'ipxe-snponly-x86_64.efi': ['ipxe-snponly-x86_64.efi', 'snponly.efi'],
  // syslinux's pxelinux (Debian `pxelinux` + `syslinux-common`), for sites still booting menus.
  'pxelinux.0': ['pxelinux.0'],
  'lpxelinux.0': ['lpxelinux.0'],
};

/** The syslinux COM32 modules pxelinux loads next to itself (`ldlinux.c32`, `menu.c32`...). */
const COM32 = /^[a-z0-9_.-]+\.c32$/i;

/** Where a loader was found. */
export interface ResolvedLoader {
  /** The name asked for. */
  name: string;
  /** Real path of the file (symlinks resolved, e.g. Debian's ipxe.efi -> /boot/ipxe.efi). */
  path: string;
  size: number;
  /** `root`: the admin's file in the TFTP root; `system`: a packaged loader. */
  source: 'root' | 'system';
}

export interface LoaderSearch {
  /** The TFTP root (absolute); files there win. Null: packaged loaders only. */
  root: string | null;
  /** Directories of packaged loaders (default DEFAULT_LOADER_DIRS). */
  dirs?: readonly string[];
}

/**
 * Resolves a requested boot file name to a file: the admin's file under the TFTP root when it exists
 * (any relative path, confined to the root: symlinks leading out of it are not followed), else a
 * packaged loader of that name. Null when neither exists or the name is unsafe.
 */
export async function resolveLoader(name: string, { root, dirs = DEFAULT_LOADER_DIRS }: LoaderSearch): Promise<ResolvedLoader | null> {
  const req = normalizeRequestPath(name);
  if (!req.ok) return null;
  if (root !== null) {
    const own = await fileUnderRoot(root, req.path);
    if (own) return { name, path: own.path, size: own.size, source: 'root' };
  }
  if (req.segments.length !== 1) return null;
  const candidates = KNOWN_LOADERS[req.path] ?? (COM32.test(req.path) ? [req.path] : []);
  for (const dir of dirs) {
    for (const file of candidates) {
      const found = await regularFile(join(dir, file));
      if (found) return { name, path: found.path, size: found.size, source: 'system' };
    }
  }
  return null;
}

/** The packaged loaders installed on this machine, by name (for the startup log and `doctor`-like checks). */
export async function findSystemLoaders(dirs: readonly string[] = DEFAULT_LOADER_DIRS): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const name of Object.keys(KNOWN_LOADERS)) {
    const hit = await resolveLoader(name, { root: null, dirs });
    if (hit) found.set(name, hit.path);
  }
  return found;
}

/** A regular file under `root` named by the safe relative `path`, refusing symlinks that escape. */
export async function fileUnderRoot(root: string, path: string): Promise<{ path: string; size: number } | null> {
  let realRoot: string;
  try {
    realRoot = await realpath(root);
  } catch {
    return null;
  }
  const found = await regularFile(join(realRoot, path));
  if (!found) return null;
  if (found.path !== realRoot && !found.path.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep)) return null;
  return found;
}

async function regularFile(path: string): Promise<{ path: string; size: number } | null> {
  try {
    const real = await realpath(path);
    const st = await stat(real);
    return st.isFile() ? { path: real, size: st.size } : null;
  } catch {
    return null;
  }
}
