/**
 * Opening a requested file under the TFTP root, refusing anything that would leave it: the name has
 * already passed normalizeRequestPath (no `..`, no absolute path), and here the real path, symlinks
 * resolved, must still be inside the real root.
 */
import { open, realpath, type FileHandle } from 'node:fs/promises';
import { join, sep } from 'node:path';

export type RootLookup =
  | { kind: 'file'; fh: FileHandle; size: number; path: string }
  | { kind: 'missing' }
  | { kind: 'refused'; reason: string };

/** Looks `path` (safe, relative) up under `root`. Missing and not-a-file both count as missing. */
export async function openUnderRoot(root: string, path: string): Promise<RootLookup> {
  let realRoot: string;
  let real: string;
  try {
    realRoot = await realpath(root);
  } catch {
    return { kind: 'missing' };
  }
  try {
    real = await realpath(join(realRoot, path));
  } catch {
    return { kind: 'missing' };
  }
  if (!real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep)) return { kind: 'refused', reason: 'symlink leads outside the tftp root' };
  let fh: FileHandle;
  try {
    fh = await open(real, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EACCES' || code === 'EPERM' ? { kind: 'refused', reason: 'permission denied' } : { kind: 'missing' };
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    return { kind: 'missing' };
  }
  return { kind: 'file', fh, size: st.size, path: real };
}
