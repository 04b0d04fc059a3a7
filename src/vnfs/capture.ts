/**
 * A new VNFS from a node's running root file system (Apache VCL's `capture`): the tar the node
 * streams is extracted, with the checks of `vnfs import` (src/vnfs/archive.ts: names, links,
 * devices, ownership), into a staging folder `vnfs/.capture-<ID>/rootfs`, and the complete capsule
 * is renamed into place: nothing is visible before, and a cut or refused upload leaves nothing.
 *
 * What is never captured: the contents of /proc, /sys, /dev, /run and /tmp (their folders are
 * kept, empty, as mount points), and whatever the exclude globs name. The node leaves them out
 * itself (and other file systems); the master drops them again, so a node that sent them anyway
 * does not put them in the VNFS.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { ProvisiondError, UsageError } from '../util/errors.js';
import { extractCapsule } from './archive.js';
import { capsuleDir, vnfsRoot, writeCapsuleConfig } from './capsule.js';

/** Folders whose contents a capture never takes (kernel and runtime file systems). */
export const ALWAYS_EXCLUDED = ['/proc', '/sys', '/dev', '/run', '/tmp'] as const;

/** The characters an exclude glob may use: a path, and the wildcards `*` and `?`. */
const GLOB = /^\/[\w./*?+@%:,=~-]*$/;

/** Checks exclude globs (absolute paths; `*` and `?` as find(1)'s -path); throws a UsageError naming the bad one. */
export function checkExcludes(globs: readonly unknown[]): string[] {
  if (globs.length > 64) throw new UsageError('exclude: at most 64 globs');
  return globs.map((g, i) => {
    if (typeof g !== 'string' || !GLOB.test(g) || g.length > 256 || g.split('/').includes('..')) {
      throw new UsageError(`exclude[${i}] ${JSON.stringify(g)}: expected an absolute path glob (/var/cache/*): letters, digits, / . _ - + @ % : , = ~ and the wildcards * ?`);
    }
    return g.length > 1 ? g.replace(/\/+$/, '') : g;
  });
}

/**
 * Whether an entry (its path below the root, `var/cache/apt/x`) is left out: the contents of the
 * always-excluded folders, or a path matching an exclude glob or below one that does. Globs match
 * as find(1)'s `-path`: `*` and `?` also match `/`.
 */
export function excludeMatcher(globs: readonly string[]): (name: string) => boolean {
  const res = globs.map((g) => new RegExp(`^${g.replace(/[.+^${}()|\\[\]-]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.')}$`));
  return (name) => {
    const path = `/${name.replace(/\/+$/, '')}`;
    if (ALWAYS_EXCLUDED.some((d) => path.startsWith(`${d}/`))) return true;
    for (let p = path; p !== ''; p = p.slice(0, p.lastIndexOf('/'))) if (res.some((re) => re.test(p))) return true;
    return false;
  };
}

/** The staging folder of capture `id` (a task id). */
export function stagingDir(statedir: string, id: string): string {
  return join(vnfsRoot(statedir), `.capture-${id}`);
}

/** Removes the staging folder of capture `id`, if any (a capture cut short, a daemon restarted mid-way). */
export async function removeStaging(statedir: string, id: string): Promise<void> {
  await rm(stagingDir(statedir, id), { recursive: true, force: true });
}

/**
 * Counts the bytes of a tar stream and remembers whether it ended with the end-of-archive marker
 * (two zero blocks, all that follows zero too): a stream cut at an entry boundary parses, but is not whole.
 */
class TarTail extends Transform {
  bytes = 0;
  #tail = Buffer.alloc(0);
  constructor(private readonly onBytes: (n: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.bytes += chunk.length;
    this.#tail = Buffer.concat([this.#tail, chunk]).subarray(-1024);
    this.onBytes(this.bytes);
    this.push(chunk);
    cb();
  }
  get whole(): boolean {
    return this.bytes >= 1024 && this.bytes % 512 === 0 && this.#tail.length === 1024 && this.#tail.every((b) => b === 0);
  }
}

export interface CaptureResult {
  name: string;
  entries: number;
  /** Bytes of the tar stream received. */
  bytes: number;
}

export interface ReceiveOptions {
  /** The staging id (the task's id): `vnfs/.capture-<id>`. */
  id: string;
  exclude: readonly string[];
  /** The capsule's description. */
  description: string;
  /** Told the tar bytes received so far, as they arrive. */
  onBytes?: (n: number) => void;
  asRoot?: boolean;
}

/**
 * Makes VNFS `name` from the tar stream of a node's root file system: extracted into the staging
 * folder, then renamed into place once whole. Throws (the staging folder removed) on a cut stream,
 * a hostile entry, or a VNFS of that name that appeared meanwhile.
 */
export async function receiveCapture(statedir: string, name: string, stream: Readable, o: ReceiveOptions): Promise<CaptureResult> {
  const dest = capsuleDir(statedir, name);
  if (existsSync(dest)) throw new UsageError(`vnfs ${name} exists already`);
  const staging = stagingDir(statedir, o.id);
  await mkdir(vnfsRoot(statedir), { recursive: true });
  await rm(staging, { recursive: true, force: true });
  await mkdir(join(staging, 'rootfs'), { recursive: true });
  const tail = new TarTail(o.onBytes ?? (() => {}));
  try {
    stream.on('error', (err) => tail.destroy(err));
    const r = await extractCapsule(stream.pipe(tail), staging, { asRoot: o.asRoot, under: 'rootfs', skip: excludeMatcher(o.exclude) });
    if (!tail.whole) throw new ProvisiondError(`the tar stream ended without its end-of-archive marker after ${tail.bytes} bytes (cut short)`);
    const rootfs = join(staging, 'rootfs');
    if ((await readdir(rootfs)).length === 0) throw new ProvisiondError('the tar stream holds no file');
    for (const d of ALWAYS_EXCLUDED) await mkdir(join(rootfs, d), { recursive: true });
    await chmod(join(rootfs, 'tmp'), 0o1777);
    await writeCapsuleConfig(staging, { description: o.description });
    if (existsSync(dest)) throw new UsageError(`vnfs ${name} exists already`);
    await rename(staging, dest);
    return { name, entries: r.entries, bytes: tail.bytes };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    if (err instanceof UsageError) throw err;
    throw new ProvisiondError(`capturing vnfs ${name}: ${errorText(err)}`, { cause: err });
  }
}

function errorText(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return /unexpected end|premature|truncated|aborted/i.test(msg) ? `the upload was cut short (${msg})` : msg;
}
