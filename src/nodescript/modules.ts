/**
 * Nodescript modules, as Perceus had them: `<statedir>/nodescripts/modules/<module>/<state>/XX-name`
 * plus a one-line `description`. Activating links a module's scripts of a state into one folder of
 * that state (`init/all`, `init/group/G`, `init/node/N`, `init/vnfs/V`); the nodescript engine follows
 * those links (they stay inside the statedir). Deactivating removes the links, nothing else.
 */
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rm, symlink } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { UsageError } from '../util/errors.js';
import { assertPlainName, isPlainName, isState } from '../util/names.js';

export interface ModuleInfo {
  name: string;
  description: string;
  /** States the module has scripts for. */
  states: string[];
  /** Where it is active: `init/all`, `init/group/compute`, ... */
  active: string[];
}

export function modulesRoot(statedir: string): string {
  return join(statedir, 'nodescripts', 'modules');
}

/** Parses `state/all`, `state/group/G`, `state/node/N`, `state/vnfs/V` into the folder it names. */
export function parseTarget(target: string): { state: string; folder: string } {
  const parts = target.split('/');
  const [state, kind, name] = parts;
  const ok = state !== undefined && isState(state) && state !== 'modules' &&
    ((kind === 'all' && parts.length === 2) || (['group', 'node', 'vnfs'].includes(kind ?? '') && parts.length === 3 && isPlainName(name ?? '')));
  if (!ok) throw new UsageError(`invalid target ${JSON.stringify(target)}: use STATE/all, STATE/group/G, STATE/node/N or STATE/vnfs/V (e.g. init/all)`);
  return { state: state!, folder: parts.slice(1).join('/') };
}

async function scripts(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir)).filter((f) => !f.startsWith('.') && !f.endsWith('~')).sort();
}

/** Every link in nodescripts/<state>/<folder>/ that points into module `name`, as `state/folder`. */
async function activeTargets(statedir: string, name: string): Promise<string[]> {
  const root = join(statedir, 'nodescripts');
  const moduleDir = resolve(modulesRoot(statedir), name) + sep;
  const found = new Set<string>();
  for (const state of await readdir(root).catch(() => [] as string[])) {
    if (state === 'modules' || !isState(state)) continue;
    const folders: string[] = ['all'];
    for (const kind of ['group', 'node', 'vnfs']) for (const n of await readdir(join(root, state, kind)).catch(() => [] as string[])) folders.push(`${kind}/${n}`);
    for (const folder of folders) {
      const dir = join(root, state, folder);
      for (const f of await readdir(dir).catch(() => [] as string[])) {
        const st = await lstat(join(dir, f)).catch(() => null);
        if (st?.isSymbolicLink() && resolve(dir, await readlink(join(dir, f))).startsWith(moduleDir)) found.add(`${state}/${folder}`);
      }
    }
  }
  return [...found].sort();
}

export async function listModules(statedir: string): Promise<ModuleInfo[]> {
  const root = modulesRoot(statedir);
  const out: ModuleInfo[] = [];
  for (const name of (await readdir(root).catch(() => [] as string[])).sort()) {
    if (!isPlainName(name) || !(await lstat(join(root, name))).isDirectory()) continue;
    const description = (await readFile(join(root, name, 'description'), 'utf8').catch(() => '')).trim().split('\n')[0] ?? '';
    const states: string[] = [];
    for (const s of (await readdir(join(root, name))).sort()) if (isState(s) && (await lstat(join(root, name, s))).isDirectory()) states.push(s);
    out.push({ name, description, states, active: await activeTargets(statedir, name) });
  }
  return out;
}

async function moduleDir(statedir: string, name: string): Promise<string> {
  assertPlainName(name, 'module name');
  const dir = join(modulesRoot(statedir), name);
  if (!existsSync(dir)) {
    const known = (await listModules(statedir)).map((m) => m.name);
    throw new UsageError(`no module ${name} in ${modulesRoot(statedir)}${known.length ? ` (there are: ${known.join(', ')})` : ''}`);
  }
  return dir;
}

/** Links module `name`'s scripts of the target's state into the target folder. Returns the links made. */
export async function activateModule(statedir: string, name: string, target: string): Promise<string[]> {
  const dir = await moduleDir(statedir, name);
  const { state, folder } = parseTarget(target);
  const files = await scripts(join(dir, state));
  if (files.length === 0) throw new UsageError(`module ${name} has no scripts for state ${state}`);
  const dest = join(statedir, 'nodescripts', state, folder);
  await mkdir(dest, { recursive: true });
  const made: string[] = [];
  for (const f of files) {
    const at = join(dest, f);
    const want = relative(dest, join(dir, state, f));
    const st = await lstat(at).catch(() => null);
    if (st && !(st.isSymbolicLink() && (await readlink(at)) === want)) {
      throw new UsageError(`${relative(statedir, at)} exists already and is not this module's link: move it away first`);
    }
    if (!st) await symlink(want, at);
    made.push(relative(statedir, at));
  }
  return made;
}

/** Removes module `name`'s links from `target` (or from everywhere). Returns the links removed. */
export async function deactivateModule(statedir: string, name: string, target?: string): Promise<string[]> {
  await moduleDir(statedir, name);
  const targets = target ? [target] : await activeTargets(statedir, name);
  const mdir = resolve(modulesRoot(statedir), name) + sep;
  const removed: string[] = [];
  for (const t of targets) {
    const { state, folder } = parseTarget(t);
    const dir = join(statedir, 'nodescripts', state, folder);
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      const at = join(dir, f);
      const st = await lstat(at);
      if (st.isSymbolicLink() && resolve(dir, await readlink(at)).startsWith(mdir)) {
        await rm(at);
        removed.push(relative(statedir, at));
      }
    }
  }
  if (target && removed.length === 0) throw new UsageError(`module ${name} is not active in ${target}`);
  return removed;
}
