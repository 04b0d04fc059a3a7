/**
 * What a requested file name is allowed to be. TFTP names come straight from the network (and from
 * firmware of every vintage), so this decides, without touching the disk, whether a name can only
 * ever mean a file under the root: no `..`, no absolute path, no backslash, no NUL or control
 * character. Symlinks are the caller's business (it must check the real path, see servers/tftp).
 */

/** A name accepted as a path relative to the root, `/`-separated, without `.` or empty segments. */
export type RequestPath = { ok: true; path: string; segments: string[] } | { ok: false; reason: string };

/** Longest name considered; firmware never sends more, and a bound keeps logs sane. */
export const MAX_NAME_LENGTH = 1024;

/** Checks and normalises a requested file name (pure; the disk is not consulted). */
export function normalizeRequestPath(name: string): RequestPath {
  if (name.length === 0) return { ok: false, reason: 'empty file name' };
  if (name.length > MAX_NAME_LENGTH) return { ok: false, reason: 'file name too long' };
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return { ok: false, reason: 'control character in file name' };
  if (name.includes('\\')) return { ok: false, reason: 'backslash in file name' };
  if (name.startsWith('/')) return { ok: false, reason: 'absolute path' };
  const segments: string[] = [];
  for (const seg of name.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') return { ok: false, reason: 'parent directory in path' };
    segments.push(seg);
  }
  if (segments.length === 0) return { ok: false, reason: 'no file in path' };
  return { ok: true, path: segments.join('/'), segments };
}
