/**
 * Discovery: which files a node gets in a provisionary state. Four folders under
 * `<statedir>/nodescripts/<state>/`, one list sorted bytewise by name, the most specific folder
 * winning a name (node > group > all > vnfs, as Perceus). Read afresh on every call, so an edit of
 * the tree is seen by the next request and a request works on the snapshot it read.
 */
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { join, relative, sep, isAbsolute } from 'node:path';
import { assertPlainName, assertState } from '../util/names.js';
import type { FolderKind, NodeContext, PlanEntry } from './types.js';

/** Override order, most specific first. */
export const FOLDER_ORDER: readonly FolderKind[] = ['node', 'group', 'all', 'vnfs'];

const LEFTOVER = /(~|\.swp|\.rpmnew|\.rpmsave|\.dpkg-[^/]*)$/;
/** Shebangs of shells: such a non-executable file goes to the node verbatim. */
const SHELL_SHEBANG = /^#!\s*(?:\/usr)?\/bin\/(?:env\s+)?(?:sh|bash|ash|dash|ksh|mksh|zsh|busybox\s+sh)(?:\s|$)/;

/** True for names discovery ignores: dotfiles and editor/package leftovers. */
export function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || LEFTOVER.test(name);
}

/** Bytewise comparison of names, as `LC_ALL=C sort`. */
export function compareBytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** The four folders of `state` for a node, most specific first; an empty group/VNFS has no folder. */
export function nodeFolders(statedir: string, state: string, node: Pick<NodeContext, 'nodename' | 'group' | 'vnfs'>): Array<{ folder: FolderKind; dir: string; abs: string }> {
  assertState(state);
  const base = join(statedir, 'nodescripts', state);
  const out: Array<{ folder: FolderKind; dir: string; abs: string }> = [];
  const named: Record<FolderKind, string> = { node: node.nodename, group: node.group, all: '', vnfs: node.vnfs };
  const what: Record<FolderKind, string> = { node: 'node name', group: 'group name', all: '', vnfs: 'vnfs name' };
  for (const folder of FOLDER_ORDER) {
    if (folder === 'all') {
      out.push({ folder, dir: 'all', abs: join(base, 'all') });
      continue;
    }
    const name = named[folder];
    if (!name) continue;
    assertPlainName(name, what[folder]);
    out.push({ folder, dir: `${folder}/${name}`, abs: join(base, folder, name) });
  }
  return out;
}

async function readFirstLine(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(256);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('latin1');
    const nl = text.indexOf('\n');
    return nl >= 0 ? text.slice(0, nl) : text;
  } finally {
    await fh.close();
  }
}

function inside(root: string, p: string): boolean {
  const r = relative(root, p);
  return r === '' || (!r.startsWith(`..${sep}`) && r !== '..' && !isAbsolute(r));
}

/** Classifies one directory entry; null when it is not a nodescript at all (a directory). */
async function classify(statedir: string, realStatedir: string, folder: FolderKind, dir: string, abs: string, name: string, isLink: boolean): Promise<PlanEntry | null> {
  const path = join(abs, name);
  const entry: PlanEntry = { name, folder, dir, path, action: 'master' };
  let target = path;
  if (isLink) {
    try {
      target = await realpath(path);
    } catch {
      return { ...entry, action: 'skipped', reason: 'symbolic link pointing nowhere' };
    }
    entry.target = target;
    if (!inside(realStatedir, target) && !inside(statedir, target)) return { ...entry, action: 'skipped', reason: `symbolic link pointing outside the statedir (${target})` };
  }
  let st;
  try {
    st = await stat(target);
  } catch (err) {
    return { ...entry, action: 'skipped', reason: `cannot stat: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  if (st.isDirectory()) return null;
  if (!st.isFile()) return { ...entry, action: 'skipped', reason: 'not a regular file' };
  if ((st.mode & 0o111) !== 0) return entry;
  let first = '';
  try {
    first = await readFirstLine(target);
  } catch (err) {
    return { ...entry, action: 'skipped', reason: `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  if (SHELL_SHEBANG.test(first)) return { ...entry, action: 'verbatim' };
  return { ...entry, action: 'skipped', reason: 'not executable' };
}

/** Reads and classifies one folder's files. */
async function readFolder(statedir: string, realStatedir: string, folder: FolderKind, dir: string, abs: string): Promise<PlanEntry[]> {
  let dirents;
  try {
    dirents = await readdir(abs, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw new Error(`reading nodescripts folder ${abs}: ${code ?? String(err)}`, { cause: err });
  }
  const found = await Promise.all(
    dirents
      .filter((d) => !isIgnoredName(d.name) && !d.isDirectory())
      .map((d) => classify(statedir, realStatedir, folder, dir, abs, d.name, d.isSymbolicLink())),
  );
  return found.filter((e): e is PlanEntry => e !== null);
}

/**
 * Reads in flight, shared: when a boot storm's 1,000 requests arrive together, `all/` is read once
 * for all of them rather than 1,000 times (every read still starts after the previous one ended, so
 * a change to the tree is seen by the next request). Entries are shared: never mutate them.
 */
export class FolderReads {
  #inflight = new Map<string, Promise<unknown>>();

  share<T>(key: string, read: () => Promise<T>): Promise<T> {
    const running = this.#inflight.get(key) as Promise<T> | undefined;
    if (running) return running;
    const p = read().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }
}

/**
 * Every file found for the node in `state`, in run order, with the shadowed ones listed after the
 * entry that wins their name. Throws a UsageError for an invalid state or name.
 */
export async function discover(statedir: string, state: string, node: Pick<NodeContext, 'nodename' | 'group' | 'vnfs'>, reads?: FolderReads): Promise<PlanEntry[]> {
  const folders = nodeFolders(statedir, state, node);
  const share = <T>(key: string, read: () => Promise<T>) => (reads ? reads.share(key, read) : read());
  const realStatedir = await share(`\0realpath`, () => realpath(statedir).catch(() => statedir));
  const perFolder = await Promise.all(folders.map(({ folder, dir, abs }) => share(abs, () => readFolder(statedir, realStatedir, folder, dir, abs))));
  // perFolder is most specific first: the first entry seen for a name wins it.
  const winners = new Map<string, PlanEntry>();
  const shadowed: PlanEntry[] = [];
  for (const entries of perFolder) {
    for (const e of entries) {
      const winner = winners.get(e.name);
      if (winner) shadowed.push({ ...e, action: 'shadowed', shadowedBy: winner.dir, reason: `overridden by ${winner.dir}/${e.name}` });
      else winners.set(e.name, e);
    }
  }
  const rank = (e: PlanEntry) => FOLDER_ORDER.indexOf(e.folder);
  return [...winners.values(), ...shadowed].sort(
    (a, b) => compareBytewise(a.name, b.name) || (a.action === 'shadowed' ? 1 : 0) - (b.action === 'shadowed' ? 1 : 0) || rank(a) - rank(b),
  );
}
