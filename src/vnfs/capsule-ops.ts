/**
 * What the admin does with capsules: import a `.vnfs` file (ours or Perceus's), export one, clone,
 * delete. A capsule's own `nodescripts/<state>/*` are linked into `nodescripts/<state>/vnfs/<name>/`
 * on import (as Perceus did), so they run for the nodes of that VNFS; delete removes those links.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { basename, join, relative } from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { parse } from 'yaml';
import { ProvisiondError, UsageError } from '../util/errors.js';
import { isPlainName, isState } from '../util/names.js';
import { extractCapsule, openTarStream, packCapsule } from './archive.js';
import { IMAGE_FILE, SIDECAR_FILE, SKELETON_FILE, SKELETON_SIDECAR, capsuleDir, formatCapsuleConfig, vnfsRoot, type CapsuleConfig } from './capsule.js';

const run = promisify(execFile);

/** The VNFS name a capsule file stands for: its file name without `.vnfs`, `.tar.gz`, `.tgz`, `.tar.bz2`, `.tar`. */
export function nameFromFile(file: string): string {
  return basename(file).replace(/(\.vnfs|\.tar\.gz|\.tgz|\.tar\.bz2|\.tbz2?|\.tar\.zst|\.oci|\.tar)+$/i, '');
}

/**
 * Perceus capsules carry a shell `config` (KEY="value" lines). It is kept as `config.perceus` and a
 * YAML config is written with what still applies: the kernel arguments and the compression.
 * Returns true when it converted.
 */
export async function convertPerceusConfig(dir: string): Promise<boolean> {
  const file = join(dir, 'config');
  if (!existsSync(file)) return false;
  const text = await readFile(file, 'utf8');
  let yaml: unknown;
  try {
    yaml = parse(text);
  } catch {
    yaml = undefined;
  }
  if (yaml === null || (typeof yaml === 'object' && !Array.isArray(yaml))) return false;
  const vars = new Map<string, string>();
  for (const m of text.matchAll(/^\s*([A-Z_][A-Z0-9_]*)=(?:"([^"]*)"|'([^']*)'|(\S*))\s*(?:#.*)?$/gm)) vars.set(m[1]!, m[2] ?? m[3] ?? m[4] ?? '');
  if (vars.size === 0) throw new ProvisiondError(`${file}: neither a provisiond (YAML) nor a Perceus (KEY="value") config`);
  const config: Partial<CapsuleConfig> = {
    description: 'imported from a Perceus capsule (its config is kept as config.perceus)',
    kernelArgs: vars.get('KERNEL_ARGS') ?? '',
    compression: vars.get('COMPRESSION') === 'high' ? 9 : 6,
  };
  await rename(file, join(dir, 'config.perceus'));
  await writeFile(file, formatCapsuleConfig(config));
  return true;
}

/** Links the capsule's nodescripts/<state>/* into <statedir>/nodescripts/<state>/vnfs/<name>/. Returns the links made. */
export async function linkCapsuleNodescripts(statedir: string, name: string): Promise<string[]> {
  const src = join(capsuleDir(statedir, name), 'nodescripts');
  if (!existsSync(src)) return [];
  const made: string[] = [];
  for (const state of (await readdir(src)).sort()) {
    if (!isState(state) || !(await lstat(join(src, state))).isDirectory()) continue;
    const dest = join(statedir, 'nodescripts', state, 'vnfs', name);
    await mkdir(dest, { recursive: true });
    for (const f of (await readdir(join(src, state))).sort()) {
      if (f.startsWith('.')) continue;
      const at = join(dest, f);
      if (existsSync(at) || (await lstat(at).catch(() => null))) await rm(at, { force: true });
      await symlink(relative(dest, join(src, state, f)), at);
      made.push(relative(statedir, at));
    }
  }
  return made;
}

/** Removes the links that point into VNFS `name`'s capsule from nodescripts/<state>/vnfs/<name>/. */
export async function unlinkCapsuleNodescripts(statedir: string, name: string): Promise<void> {
  const root = join(statedir, 'nodescripts');
  if (!existsSync(root)) return;
  for (const state of await readdir(root)) {
    const dir = join(root, state, 'vnfs', name);
    if (!existsSync(dir)) continue;
    for (const f of await readdir(dir)) {
      const at = join(dir, f);
      const st = await lstat(at);
      if (st.isSymbolicLink() && (await readlink(at)).includes(`vnfs/${name}/nodescripts/`)) await rm(at);
    }
    if ((await readdir(dir)).length === 0) await rm(dir, { recursive: true });
  }
}

export interface ImportResult {
  name: string;
  entries: number;
  bytes: number;
  perceus: boolean;
  links: string[];
}

/**
 * Puts a complete capsule folder `tmp` (made under vnfsRoot) in place as VNFS `name`, replacing one
 * of that name (the caller checked `--force`), and links its nodescripts. Returns the links made.
 */
export async function installCapsule(statedir: string, name: string, tmp: string): Promise<string[]> {
  const dest = capsuleDir(statedir, name);
  if (existsSync(dest)) {
    await unlinkCapsuleNodescripts(statedir, name);
    const old = `${tmp}.old`;
    await rename(dest, old);
    await rename(tmp, dest);
    await rm(old, { recursive: true, force: true });
  } else {
    await rename(tmp, dest);
  }
  return await linkCapsuleNodescripts(statedir, name);
}

/**
 * Imports capsule file `file` as VNFS `name` (default: from the file name). Everything is extracted
 * into a hidden temp folder first; only a complete, valid capsule is renamed into place.
 */
export async function importCapsule(statedir: string, file: string, opts: { name?: string; force?: boolean } = {}): Promise<ImportResult> {
  const name = opts.name ?? nameFromFile(file);
  if (!isPlainName(name)) throw new UsageError(`cannot name a vnfs ${JSON.stringify(name)} (from ${file}): give --name`);
  const dest = capsuleDir(statedir, name);
  if (existsSync(dest) && !opts.force) throw new UsageError(`vnfs ${name} exists already (delete it first, or --force to replace it)`);
  await mkdir(vnfsRoot(statedir), { recursive: true });
  const tmp = join(vnfsRoot(statedir), `.import-${name}-${process.pid}-${randomBytes(3).toString('hex')}`);
  await mkdir(tmp);
  try {
    const { stream, done } = await openTarStream(file);
    const r = await extractCapsule(stream, tmp);
    await done;
    if (!['config', 'rootfs', IMAGE_FILE].some((f) => existsSync(join(tmp, f)))) {
      throw new ProvisiondError('not a VNFS capsule: it has no config, rootfs/ or image');
    }
    const perceus = await convertPerceusConfig(tmp);
    const links = await installCapsule(statedir, name, tmp);
    return { name, entries: r.entries, bytes: r.bytes, perceus, links };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    const msg = (err as Error).message;
    throw new ProvisiondError(`reading vnfs capsule ${basename(file)}: ${msg.startsWith('Unexpected end') || /unexpected end|premature|truncated/i.test(msg) ? 'unexpected end of archive' : msg}`, { cause: err });
  }
}

/** Writes VNFS `name` to `file` as a gzip-compressed tar capsule (atomically). */
export async function exportCapsule(statedir: string, name: string, file: string, onBytes?: (n: number) => void): Promise<void> {
  const dir = capsuleDir(statedir, name);
  if (!existsSync(dir)) throw new UsageError(`no vnfs ${name}`);
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const gz = createGzip({ level: 6 });
    const out = createWriteStream(tmp);
    const writing = pipeline(gz, out);
    await packCapsule(dir, gz as Writable, onBytes);
    await writing;
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new ProvisiondError(`exporting vnfs ${name} to ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Copies VNFS `src` to a new VNFS `dst` (rootfs, config, nodescripts; the image is rebuilt on demand). */
export async function cloneCapsule(statedir: string, src: string, dst: string): Promise<void> {
  const from = capsuleDir(statedir, src);
  const to = capsuleDir(statedir, dst);
  if (!existsSync(from)) throw new UsageError(`no vnfs ${src}`);
  if (existsSync(to)) throw new UsageError(`vnfs ${dst} exists already`);
  const tmp = join(vnfsRoot(statedir), `.import-${dst}-${process.pid}`);
  try {
    // cp -a keeps what fs.cp would lose: ownership, device nodes, hard links.
    await run('cp', ['-a', from, tmp]);
    for (const f of [IMAGE_FILE, SIDECAR_FILE, SKELETON_FILE, SKELETON_SIDECAR, '.image.stamp']) await rm(join(tmp, f), { force: true });
    await rename(tmp, to);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  await linkCapsuleNodescripts(statedir, dst);
}

/** Removes VNFS `name` and its nodescript links. */
export async function deleteCapsule(statedir: string, name: string): Promise<void> {
  const dir = capsuleDir(statedir, name);
  if (!existsSync(dir)) throw new UsageError(`no vnfs ${name}`);
  await unlinkCapsuleNodescripts(statedir, name);
  const tmp = join(vnfsRoot(statedir), `.delete-${name}-${process.pid}`);
  await rename(dir, tmp);
  await rm(tmp, { recursive: true, force: true });
}
