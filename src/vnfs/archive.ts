/**
 * VNFS capsule files (`.vnfs`): a tar stream of the capsule folder (config, rootfs/, nodescripts/,
 * image), plain, gzip or bzip2 compressed (Perceus wrote `tar cjf` of the capsule folder, entries
 * `./config`, `./rootfs/...`). Export is deterministic (sorted entries, metadata from the files), so
 * exporting an imported capsule gives the same bytes.
 *
 * Import is hostile-input safe: every entry is checked before anything is written, and written into
 * a temp folder that is renamed into place only once the whole archive was read. Refused: absolute
 * names, `..`, entries below a symlink, symlinks whose target leaves the capsule, hard links to
 * names not in the archive, device nodes unless root (and only under rootfs/).
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import { chmod, chown, lchown, link, lstat, mkdir, readdir, readlink, rm, symlink, utimes, lutimes } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { PassThrough, type Readable, type Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { ProvisiondError } from '../util/errors.js';
import { bytewise, devMajor, devMinor } from './cpio-tree.js';

/** Capsule members kept out of an export: the built image is rebuilt from rootfs on the other side. */
const NOT_EXPORTED = new Set(['image.cpio.gz', 'image.cpio.gz.sha256', 'skeleton.cpio.gz', 'skeleton.cpio.gz.sha256', '.image.stamp']);

/** Compression of a capsule file or an image layer, from its first bytes. */
export function sniffCompression(head: Buffer): 'gzip' | 'bzip2' | 'zstd' | 'none' {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

async function readHead(file: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of createReadStream(file, { start: 0, end: 15 })) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The uncompressed tar stream of a capsule file or image layer (bzip2 and zstd through the system's
 * bzip2 and zstd, streaming).
 */
export async function openTarStream(file: string): Promise<{ stream: Readable; done: Promise<void> }> {
  const head = await readHead(file);
  const kind = head.length >= 4 ? sniffCompression(head) : 'none';
  const src = createReadStream(file);
  if (kind === 'none') return { stream: src, done: Promise.resolve() };
  if (kind === 'gzip') {
    const gunzip = createGunzip();
    src.on('error', (e) => gunzip.destroy(e));
    return { stream: src.pipe(gunzip), done: Promise.resolve() };
  }
  const child = spawn(kind, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  src.pipe(child.stdin);
  child.stdin.on('error', () => {});
  const out = new PassThrough();
  child.stdout.pipe(out);
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e) => reject(new ProvisiondError(`${kind} not available to read ${file}: ${e.message} (install Debian package ${kind})`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else {
        const e = new ProvisiondError(`${kind}: ${stderr.trim().split('\n').pop() || `exit ${code}`}`);
        out.destroy(e);
        reject(e);
      }
    });
  });
  done.catch(() => {});
  return { stream: out, done };
}

/** Normalizes an archive name to a relative POSIX path, or throws naming the entry. */
export function safeEntryName(raw: string): string {
  if (raw.includes('\0')) throw new ProvisiondError(`entry ${JSON.stringify(raw)}: NUL in name`);
  if (raw.startsWith('/')) throw new ProvisiondError(`entry ${JSON.stringify(raw)}: absolute path`);
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new ProvisiondError(`entry ${JSON.stringify(raw)}: escapes the capsule (..)`);
  return parts.join('/');
}

/** True when a symlink at `name` pointing to `target` stays inside the capsule (absolute targets are inside rootfs/). */
export function symlinkStaysInside(name: string, target: string): boolean {
  if (target.includes('\0')) return false;
  if (target.startsWith('/')) {
    // An absolute link is resolved against the node's root: fine inside rootfs/ (e.g. /bin/busybox).
    return name.startsWith('rootfs/');
  }
  const resolved = posix.normalize(posix.join(posix.dirname(name), target));
  if (resolved === '..' || resolved.startsWith('../')) return false;
  if (name.startsWith('rootfs/') && !(resolved === 'rootfs' || resolved.startsWith('rootfs/'))) return false;
  return true;
}

export interface ImportOptions {
  /** Device nodes and ownership are restored only when running as root. */
  asRoot?: boolean;
  /**
   * A tar of a root file system rather than of a capsule (a node's capture): every entry goes below
   * this folder of `dest` (`rootfs`), with the same checks as a capsule's rootfs/, and no top folder is stripped.
   */
  under?: string;
  /** Entries (their name below `under`, e.g. `proc/1/stat`) left out of the extraction. */
  skip?: (name: string) => boolean;
}

/**
 * Extracts the tar `stream` into `dest` (an empty temp folder), refusing hostile entries. When every
 * entry sits below one top folder (`NAME/config`, `NAME/rootfs/...`), that folder is stripped.
 */
export async function extractCapsule(stream: Readable, dest: string, opts: ImportOptions = {}): Promise<{ entries: number; bytes: number }> {
  const asRoot = opts.asRoot ?? process.getuid?.() === 0;
  const extract = tar.extract();
  const links = new Map<string, string>(); // symlinks written so far: nothing may be written below them
  const dirs: Array<{ path: string; mode: number; mtime: Date }> = [];
  let entries = 0;
  let bytes = 0;
  let strip: string | null = null;
  const isBelowSymlink = (name: string): boolean => {
    for (let d = posix.dirname(name); d !== '.'; d = posix.dirname(d)) if (links.has(d)) return true;
    return false;
  };
  const consume = async (): Promise<void> => {
    for await (const entry of extract) {
      const h = entry.header;
      let name = safeEntryName(h.name);
      if (name === '' || (opts.under !== undefined && opts.skip?.(name))) {
        entry.resume();
        continue;
      }
      if (opts.under !== undefined) name = `${opts.under}/${name}`;
      entries++;
      // Perceus and `tar czf x.vnfs NAME/` put everything under one folder; it is dropped on the fly
      // once it is clear the capsule's own members (config, rootfs) sit below it.
      const top = name.split('/')[0]!;
      if (opts.under === undefined && entries === 1 && h.type === 'directory' && !['rootfs', 'nodescripts', 'config'].includes(top) && !name.includes('/')) {
        strip = top;
        entry.resume();
        continue;
      }
      if (strip) {
        if (name !== strip && !name.startsWith(`${strip}/`)) throw new ProvisiondError(`entry ${JSON.stringify(h.name)}: outside the capsule folder ${strip}/`);
        name = name.slice(strip.length + 1);
        if (name === '') {
          entry.resume();
          continue;
        }
      }
      if (isBelowSymlink(name)) throw new ProvisiondError(`entry ${JSON.stringify(h.name)}: below a symbolic link`);
      const path = join(dest, name);
      const mode = (h.mode ?? 0o644) & 0o7777;
      const mtime = h.mtime ?? new Date(0);
      await mkdir(dirname(path), { recursive: true });
      // A later entry of the same name replaces the earlier one; never write through it (a symlink
      // to /etc/passwd followed by a file of that name must not touch the master's file).
      const existing = await lstat(path).catch(() => null);
      if (existing && !(existing.isDirectory() && h.type === 'directory')) {
        await rm(path, { recursive: true, force: true });
        links.delete(name);
      }
      switch (h.type) {
        case 'directory':
          await mkdir(path, { recursive: true });
          dirs.push({ path, mode, mtime });
          entry.resume();
          break;
        case 'file':
        case 'contiguous-file': {
          await pipeline(entry, createWriteStream(path, { mode: 0o600 }) as Writable);
          bytes += h.size ?? 0;
          await chmod(path, mode);
          await utimes(path, mtime, mtime);
          break;
        }
        case 'symlink': {
          const target = h.linkname ?? '';
          if (!symlinkStaysInside(name, target)) throw new ProvisiondError(`entry ${JSON.stringify(h.name)}: symbolic link to ${JSON.stringify(target)} leaves the capsule`);
          await symlink(target, path);
          links.set(name, target);
          await lutimes(path, mtime, mtime).catch(() => {});
          entry.resume();
          break;
        }
        case 'link': {
          const raw = safeEntryName(h.linkname ?? '');
          const target = opts.under !== undefined && raw ? `${opts.under}/${raw}` : strip ? raw.slice(strip.length + 1) : raw;
          if (!target || (strip && !raw.startsWith(`${strip}/`)) || isBelowSymlink(target) || links.has(target)) {
            throw new ProvisiondError(`entry ${JSON.stringify(h.name)}: hard link to ${JSON.stringify(h.linkname)} outside the capsule`);
          }
          const st = await lstat(join(dest, target)).catch(() => null);
          if (!st?.isFile()) throw new ProvisiondError(`entry ${JSON.stringify(h.name)}: hard link to ${JSON.stringify(h.linkname)}, which is not a file earlier in the archive`);
          await link(join(dest, target), path);
          entry.resume();
          break;
        }
        case 'character-device':
        case 'block-device':
        case 'fifo': {
          if (!name.startsWith('rootfs/')) throw new ProvisiondError(`entry ${JSON.stringify(h.name)}: device node outside rootfs/`);
          if (!asRoot) throw new ProvisiondError(`entry ${JSON.stringify(h.name)}: device nodes need root (run the import as root)`);
          const kind = h.type === 'fifo' ? 'p' : h.type === 'block-device' ? 'b' : 'c';
          const args = kind === 'p' ? [path, 'p'] : [path, kind, String(h.devmajor ?? 0), String(h.devminor ?? 0)];
          await runMknod(args, mode);
          entry.resume();
          break;
        }
        default:
          // pax headers are consumed by tar-stream; anything else (sockets, GNU sparse...) is refused.
          throw new ProvisiondError(`entry ${JSON.stringify(h.name)}: unsupported type ${h.type}`);
      }
      if (asRoot && h.type !== 'link') {
        const own = h.type === 'symlink' ? lchown : chown;
        await own(path, h.uid ?? 0, h.gid ?? 0).catch(() => {});
        if (h.type !== 'symlink' && (mode & 0o7000) !== 0) await chmod(path, mode); // chown clears setuid bits
      }
    }
  };
  await readTar(stream, extract, consume);
  // Directory modes and times last: writing into them changed their mtime, and a read-only
  // directory would have refused its own entries.
  for (const d of dirs.reverse()) {
    await chmod(d.path, d.mode);
    await utimes(d.path, d.mtime, d.mtime);
  }
  return { entries, bytes };
}

/**
 * Feeds `stream` (through `via`, when given, e.g. a hashing transform) into tar-stream's `extract`
 * while `consume` reads its entries; an error of either side, or of `consume`, ends all of it.
 */
export async function readTar(stream: Readable, extract: tar.Extract, consume: () => Promise<void>, via?: Transform): Promise<void> {
  // An error of the stream ends the extraction, and the promise settles once `consume` has stopped
  // writing: a caller that removes the destination then leaves nothing behind.
  await new Promise<void>((resolve, reject) => {
    let failure: unknown = null;
    const fail = (err: unknown): void => {
      failure ??= err;
      stream.unpipe(via ?? extract);
      stream.destroy();
      extract.destroy(err instanceof Error ? err : new Error(String(err)));
    };
    stream.on('error', fail);
    via?.on('error', fail);
    extract.on('error', fail);
    (via ? stream.pipe(via) : stream).pipe(extract);
    consume().then(
      () => (failure === null ? resolve() : reject(failure)),
      (err: unknown) => {
        fail(err);
        reject(failure);
      },
    );
  });
}

export async function runMknod(args: string[], mode: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const c = spawn('mknod', ['-m', mode.toString(8), ...args], { stdio: 'ignore' });
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new ProvisiondError(`mknod ${args.join(' ')}: exit ${code}`))));
  });
}

/** Entries of a capsule folder in export order: sorted bytewise, parents first; the image left out. */
async function* walk(root: string, rel = ''): AsyncGenerator<{ rel: string; path: string; st: Stats }> {
  for (const name of (await readdir(join(root, rel))).sort(bytewise)) {
    const r = rel ? `${rel}/${name}` : name;
    if (!rel && (NOT_EXPORTED.has(name) || name.includes('.tmp-'))) continue;
    const path = join(root, r);
    const st = await lstat(path);
    if (st.isSocket()) continue;
    yield { rel: r, path, st };
    if (st.isDirectory()) yield* walk(root, r);
  }
}

/** Writes capsule folder `dir` as a tar stream into `out` (gzip-compressed by the caller if wanted). */
export async function packCapsule(dir: string, out: Writable, onBytes?: (n: number) => void): Promise<void> {
  const pack = tar.pack();
  const piping = pipeline(pack, out);
  const seen = new Map<string, string>();
  for await (const { rel, path, st } of walk(dir)) {
    const base = { name: rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: new Date(Math.floor(st.mtimeMs / 1000) * 1000), uname: '', gname: '' };
    if (st.isDirectory()) await entry(pack, { ...base, type: 'directory' });
    else if (st.isSymbolicLink()) await entry(pack, { ...base, type: 'symlink', linkname: await readlink(path) });
    else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? seen.get(key) : undefined;
      if (first) {
        await entry(pack, { ...base, type: 'link', linkname: first });
        continue;
      }
      if (st.nlink > 1) seen.set(key, rel);
      await new Promise<void>((resolve, reject) => {
        const w = pack.entry({ ...base, type: 'file', size: st.size }, (err) => (err ? reject(err) : resolve()));
        const r = createReadStream(path);
        r.on('data', (c) => onBytes?.((c as Buffer).length));
        r.on('error', reject);
        r.pipe(w);
      });
    } else if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO()) {
      const type = st.isFIFO() ? 'fifo' : st.isBlockDevice() ? 'block-device' : 'character-device';
      await entry(pack, { ...base, type, devmajor: devMajor(st.rdev), devminor: devMinor(st.rdev) });
    }
  }
  pack.finalize();
  await piping;
}

function entry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(header, (err) => (err ? reject(err) : resolve())));
}
