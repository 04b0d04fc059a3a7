/**
 * The nodescripts tree as a list (every file, folder and link, with its mode and the sha256 of a
 * file's content) and the difference between two such lists: what `provisiond script diff --server`
 * shows between this server's tree and another's. Reading is `listTree`; comparing, `diffTrees`, is pure.
 *
 * Dotfiles and editor or package leftovers (`.git`, `x~`, `x.rpmnew`) are not listed: no node ever
 * gets them, and a tree kept in git has its `.git` on one server only.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { compareBytewise, isIgnoredName } from './discover.js';

/** One entry of the tree; `path` relative to the tree's root, `/`-separated. */
export interface TreeEntry {
  path: string;
  type: 'file' | 'dir' | 'link' | 'other';
  /** Permission bits, four octal digits (`0755`). */
  mode: string;
  /** Bytes (a file), else 0. */
  size: number;
  /** sha256 of a file's content (hex); null for anything else. */
  sha256: string | null;
  /** Where a link points, as written; null for anything else. */
  target: string | null;
}

/** Every entry under `root` (not following links), sorted bytewise by path; [] when the root does not exist. */
export async function listTree(root: string): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && prefix === '') return;
      throw err;
    }
    for (const name of names.sort(compareBytewise)) {
      if (isIgnoredName(name)) continue;
      const abs = join(dir, name);
      const path = prefix === '' ? name : `${prefix}/${name}`;
      const st = await lstat(abs);
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      if (st.isDirectory()) {
        out.push({ path, type: 'dir', mode, size: 0, sha256: null, target: null });
        await walk(abs, path);
      } else if (st.isSymbolicLink()) {
        out.push({ path, type: 'link', mode, size: 0, sha256: null, target: await readlink(abs) });
      } else if (st.isFile()) {
        out.push({ path, type: 'file', mode, size: st.size, sha256: await sha256Of(abs), target: null });
      } else {
        out.push({ path, type: 'other', mode, size: 0, sha256: null, target: null });
      }
    }
  };
  await walk(root, '');
  return out.sort((a, b) => compareBytewise(a.path, b.path));
}

function sha256Of(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject);
  });
}

/** How an entry differs between here (this server) and there (the other). */
export type TreeDifference =
  | { path: string; change: 'only-here' | 'only-there'; entry: TreeEntry }
  | { path: string; change: 'content'; here: TreeEntry; there: TreeEntry }
  | { path: string; change: 'mode'; here: TreeEntry; there: TreeEntry }
  | { path: string; change: 'type'; here: TreeEntry; there: TreeEntry };

/**
 * The differences, sorted by path. Under a folder only one side has, only the folder is named (as
 * `diff -r` says `Only in`). A file whose content and mode both differ gives two differences.
 */
export function diffTrees(here: readonly TreeEntry[], there: readonly TreeEntry[]): TreeDifference[] {
  const a = new Map(here.map((e) => [e.path, e]));
  const b = new Map(there.map((e) => [e.path, e]));
  const out: TreeDifference[] = [];
  const onlyDirs: string[] = [];
  const under = (path: string) => onlyDirs.some((d) => path.startsWith(`${d}/`));
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort(compareBytewise);
  for (const path of paths) {
    if (under(path)) continue;
    const x = a.get(path);
    const y = b.get(path);
    if (!x || !y) {
      const entry = (x ?? y)!;
      out.push({ path, change: x ? 'only-here' : 'only-there', entry });
      if (entry.type === 'dir') onlyDirs.push(path);
      continue;
    }
    if (x.type !== y.type) {
      out.push({ path, change: 'type', here: x, there: y });
      if (x.type === 'dir' || y.type === 'dir') onlyDirs.push(path);
      continue;
    }
    if (x.sha256 !== y.sha256 || x.target !== y.target) out.push({ path, change: 'content', here: x, there: y });
    // A link's own mode means nothing on Linux.
    if (x.mode !== y.mode && x.type !== 'link') out.push({ path, change: 'mode', here: x, there: y });
  }
  return out;
}

/** One line per difference, as `diff -r` words it, then a `git diff --stat`-like summary. */
export function formatTreeDiff(diffs: readonly TreeDifference[], o: { here: string; there: string; root?: string }): string {
  const root = o.root ?? 'nodescripts';
  const p = (path: string) => `${root}/${path}`;
  const parentOf = (path: string) => (path.includes('/') ? p(path.slice(0, path.lastIndexOf('/'))) : root);
  const base = (path: string) => path.slice(path.lastIndexOf('/') + 1);
  const kind = (e: TreeEntry) => (e.type === 'dir' ? 'folder' : e.type === 'link' ? `link -> ${e.target}` : e.type === 'file' ? 'file' : 'special file');
  const lines = diffs.map((d) => {
    switch (d.change) {
      case 'only-here':
        return `Only in ${parentOf(d.path)} (${o.here}): ${base(d.path)}${d.entry.type === 'dir' ? '/' : ''}`;
      case 'only-there':
        return `Only in ${parentOf(d.path)} (${o.there}): ${base(d.path)}${d.entry.type === 'dir' ? '/' : ''}`;
      case 'content':
        return d.here.type === 'link'
          ? `Links ${p(d.path)} differ: -> ${d.here.target} (${o.here}), -> ${d.there.target} (${o.there})`
          : `Files ${p(d.path)} differ: sha256 ${d.here.sha256!.slice(0, 12)} (${o.here}), ${d.there.sha256!.slice(0, 12)} (${o.there})`;
      case 'mode':
        return `Mode of ${p(d.path)} differs: ${d.here.mode} (${o.here}), ${d.there.mode} (${o.there})`;
      case 'type':
        return `${p(d.path)} is a ${kind(d.here)} (${o.here}), a ${kind(d.there)} (${o.there})`;
    }
  });
  const count = (c: TreeDifference['change']) => diffs.filter((d) => d.change === c).length;
  const parts = [
    [count('only-here'), `only in ${o.here}`],
    [count('only-there'), `only in ${o.there}`],
    [count('content'), 'changed'],
    [count('mode'), 'mode changed'],
    [count('type'), 'of another type'],
  ]
    .filter(([n]) => (n as number) > 0)
    .map(([n, what]) => `${n} ${what}`);
  const summary = diffs.length === 0 ? 'no differences' : `${diffs.length} difference${diffs.length === 1 ? '' : 's'}: ${parts.join(', ')}`;
  return `${[...lines, summary].join('\n')}\n`;
}
