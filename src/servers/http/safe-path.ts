/**
 * Maps a getfile URL path onto a file inside one of the exported trees, refusing anything that
 * could leave them: `..`, encoded traversal (`%2e%2e`, `%2f`), backslashes, NUL, dotfiles, and
 * symbolic links whose target resolves outside the tree.
 */
import { realpathSync } from 'node:fs';
import { join, sep } from 'node:path';
import { HttpError } from './errors.js';

/** An exported tree: the first URL segment `name` selects the directory `dir`. */
export interface ExportedTree {
  name: string;
  dir: string;
}

/**
 * Splits and decodes a URL path (without the route prefix) into safe segments.
 * Throws HttpError 400 (undecodable), 403 (traversal) or 404 (dotfile, empty).
 */
export function safeSegments(rawPath: string): string[] {
  const segments: string[] = [];
  for (const raw of rawPath.split('/')) {
    if (raw === '') continue;
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      throw new HttpError(400, `bad path: undecodable segment ${JSON.stringify(raw)}`);
    }
    if (seg === '.' || seg === '..' || seg.includes('/') || seg.includes('\\') || seg.includes('\0')) {
      throw new HttpError(403, 'forbidden: path leaves the exported tree');
    }
    if (seg.startsWith('.')) throw new HttpError(404, 'not found');
    segments.push(seg);
  }
  if (segments.length === 0) throw new HttpError(404, 'not found');
  return segments;
}

/**
 * Which of `trees` `rawPath` (`vnfs/demo/image.cpio.gz`) names, and the path inside it, without
 * touching the file system; a first segment naming no tree is in `fallback` (the admin's `files/`).
 */
export function locateExported(rawPath: string, trees: readonly ExportedTree[], fallback?: ExportedTree): { tree: ExportedTree; relative: string } {
  const segments = safeSegments(rawPath);
  let tree = trees.find((t) => t.name === segments[0]);
  let rest = segments.slice(1);
  if (!tree) {
    if (!fallback) throw new HttpError(404, 'not found');
    tree = fallback;
    rest = segments;
  }
  if (rest.length === 0) throw new HttpError(404, 'not found');
  return { tree, relative: rest.join('/') };
}

/**
 * Resolves `rawPath` (`vnfs/demo/image.cpio.gz`) to the real path of a file in one of `trees` (see
 * locateExported). The real path must stay inside the tree's real directory.
 */
export function resolveExported(
  rawPath: string,
  trees: readonly ExportedTree[],
  fallback?: ExportedTree,
): { tree: ExportedTree; relative: string; file: string } {
  return realExported(locateExported(rawPath, trees, fallback));
}

/** The real path of a located file; 404 when it does not exist, 403 when it leads out of its tree. */
export function realExported({ tree, relative }: { tree: ExportedTree; relative: string }): { tree: ExportedTree; relative: string; file: string } {
  let root: string;
  let file: string;
  try {
    // Synchronous on purpose: a realpath of a cached local path costs microseconds, while a round trip
    // through libuv's thread pool per request measured 10x slower under a loaded master.
    root = realpathSync.native(tree.dir);
    file = realpathSync.native(join(root, ...relative.split('/')));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // A name longer than the file system takes (found by the fuzz test) names no file either.
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG') throw new HttpError(404, 'not found');
    throw err;
  }
  if (!file.startsWith(root + sep)) throw new HttpError(403, 'forbidden: path leaves the exported tree');
  return { tree, relative, file };
}
