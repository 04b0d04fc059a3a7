/**
 * Container images as VNFS (Warewulf's `container import`): `vnfs import` also takes
 * `oci-archive:FILE[:TAG]` (`podman save --format oci-archive`), `docker-archive:FILE[:TAG]`
 * (`docker save`, `podman save`) and `oci:DIR[:TAG]` (an OCI image layout, as skopeo or umoci write).
 *
 * The image's layers are applied in order into a fresh rootfs with the OCI whiteouts (`.wh.NAME`
 * removes NAME of the layers below, `.wh..wh..opq` empties its folder of them), hard links, modes,
 * times and (as root) owners and device nodes. Every blob is checked against its digest, and every
 * layer against the image config's `diff_ids`. The safety rules of capsule import hold: no absolute
 * names or `..`, nothing written below a symbolic link, no link that leaves the root file system,
 * and everything happens in a hidden temp folder renamed into place only when the whole image was
 * applied: a bad archive leaves nothing behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, statSync } from 'node:fs';
import { chmod, chown, lchown, link, lstat, lutimes, mkdir, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { ProvisiondError, UsageError } from '../util/errors.js';
import { isPlainName } from '../util/names.js';
import { openTarStream, readTar, runMknod, safeEntryName, symlinkStaysInside } from './archive.js';
import { capsuleDir, formatCapsuleConfig, vnfsRoot } from './capsule.js';
import { installCapsule, nameFromFile } from './capsule-ops.js';

export type ImageSourceKind = 'oci-archive' | 'docker-archive' | 'oci';

/** Where a container image comes from: `KIND:PATH[:TAG]`. */
export interface ImageSource {
  kind: ImageSourceKind;
  path: string;
  /** The tag or reference asked for (`latest`, `busybox:latest`, `docker.io/library/busybox:1.36`); null: the only one. */
  tag: string | null;
}

const KINDS: readonly ImageSourceKind[] = ['oci-archive', 'docker-archive', 'oci'];

/**
 * Parses `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:TAG]` or `oci:DIR[:TAG]`; null for anything
 * else (a capsule file). The path is the longest prefix that exists, so paths and references with
 * colons both work (`docker-archive:img.tar:busybox:latest`).
 */
export function parseImageSource(arg: string, exists: (p: string) => boolean = existsSync): ImageSource | null {
  const colon = arg.indexOf(':');
  if (colon < 0) return null;
  const kind = arg.slice(0, colon) as ImageSourceKind;
  if (!KINDS.includes(kind)) return null;
  const rest = arg.slice(colon + 1);
  if (!rest) throw new UsageError(`${arg}: give the ${kind === 'oci' ? 'folder' : 'file'} after ${kind}:`);
  const cuts = [rest.length, ...[...rest.matchAll(/:/g)].map((m) => m.index).reverse()];
  for (const cut of cuts) {
    const path = rest.slice(0, cut);
    if (path && exists(path)) return { kind, path, tag: cut < rest.length ? rest.slice(cut + 1) || null : null };
  }
  throw new UsageError(`${arg}: no such ${kind === 'oci' ? 'folder' : 'file'} ${rest.split(':')[0]}`);
}

/** A descriptor of the OCI image spec (a manifest, config or layer blob). */
interface Descriptor {
  mediaType?: string;
  digest: string;
  size?: number;
  annotations?: Record<string, string>;
  platform?: { architecture?: string; os?: string; variant?: string };
}

/** The image config (what `docker inspect` shows), as kept in the capsule. */
interface ImageConfig {
  architecture?: string;
  os?: string;
  config?: Record<string, unknown>;
  rootfs?: { type?: string; diff_ids?: string[] };
}

/** A resolved image: its layers in order, each a blob on disk with what it must hash to. */
interface ResolvedImage {
  reference: string | null;
  manifestDigest: string | null;
  config: ImageConfig;
  configText: string;
  layers: Array<{ file: string; digest: string | null; diffId: string | null }>;
}

export interface OciImportResult {
  name: string;
  source: string;
  reference: string | null;
  layers: number;
  entries: number;
  bytes: number;
  whiteouts: number;
  links: string[];
  /** The image has no init (sbin/init): nodes cannot boot it as it is. */
  noInit: boolean;
}

const MEDIA_INDEX = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];
const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** The archive's members, extracted into a temp folder (regular files and folders; symlinks resolved inside it). */
class ArchiveFiles {
  private readonly links = new Map<string, string>();
  constructor(readonly root: string) {}

  static async extract(file: string, root: string): Promise<ArchiveFiles> {
    const files = new ArchiveFiles(root);
    const { stream, done } = await openTarStream(file);
    const extract = tar.extract();
    const consume = async (): Promise<void> => {
      for await (const entry of extract) {
        const h = entry.header;
        const name = safeEntryName(h.name);
        if (name === '' || h.type === 'directory') {
          if (name) await mkdir(join(root, name), { recursive: true });
          entry.resume();
          continue;
        }
        if (h.type === 'symlink') {
          files.links.set(name, posix.normalize(posix.join(posix.dirname(name), h.linkname ?? '')));
          entry.resume();
          continue;
        }
        if (h.type !== 'file' && h.type !== 'contiguous-file') throw new ProvisiondError(`entry ${JSON.stringify(h.name)}: unexpected ${h.type} in an image archive`);
        await mkdir(dirname(join(root, name)), { recursive: true });
        await pipeline(entry, createWriteStream(join(root, name)) as Writable);
      }
    };
    await readTar(stream, extract, consume);
    await done;
    return files;
  }

  /** The path on disk of archive member `name`, following the archive's own symlinks (docker save links repeated layers). */
  path(name: string): string {
    let n = safeEntryName(name);
    for (let hops = 0; this.links.has(n); hops++) {
      if (hops > 16) throw new ProvisiondError(`${name}: too many symbolic links`);
      n = this.links.get(n)!;
      if (n === '..' || n.startsWith('../') || n.startsWith('/')) throw new ProvisiondError(`${name}: symbolic link out of the archive`);
    }
    const p = join(this.root, n);
    if (!existsSync(p)) throw new ProvisiondError(`${name}: missing from the image`);
    return p;
  }
}

async function readJson<T>(file: string, what: string): Promise<{ value: T; text: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new ProvisiondError(`${what}: missing from the image`);
  }
  try {
    return { value: JSON.parse(text) as T, text };
  } catch {
    throw new ProvisiondError(`${what}: not JSON`);
  }
}

function digestHex(digest: string, what: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new ProvisiondError(`${what}: unsupported digest ${JSON.stringify(digest)} (sha256 only)`);
  return m[1]!;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** Reads blob `digest` of an OCI layout, checked against its digest. */
async function blob(root: string, d: Descriptor, what: string): Promise<string> {
  const file = join(root, 'blobs', 'sha256', digestHex(d.digest, what));
  if (!existsSync(file)) throw new ProvisiondError(`${what} ${d.digest}: blob missing from the image`);
  const got = await sha256File(file);
  if (got !== d.digest) throw new ProvisiondError(`${what} ${d.digest}: blob is corrupt (its sha256 is ${got})`);
  return file;
}

/** True when reference `ref` (a RepoTag or ref.name annotation) is what the admin asked for. */
export function referenceMatches(ref: string, asked: string): boolean {
  if (ref === asked || ref.endsWith(`/${asked}`)) return true;
  if (!asked.includes(':')) {
    const lastColon = ref.lastIndexOf(':');
    const tag = lastColon > ref.lastIndexOf('/') ? ref.slice(lastColon + 1) : null;
    const repo = lastColon > ref.lastIndexOf('/') ? ref.slice(0, lastColon) : ref;
    return tag === asked || repo === asked || repo.endsWith(`/${asked}`);
  }
  return false;
}

function pick<T>(items: T[], refOf: (x: T) => string[], asked: string | null, source: string): T {
  if (items.length === 0) throw new ProvisiondError(`${source}: no image in it`);
  if (asked === null) {
    if (items.length === 1) return items[0]!;
    throw new UsageError(`${source} holds ${items.length} images: add :TAG (one of ${items.flatMap(refOf).join(', ') || 'untagged'})`);
  }
  const hit = items.find((x) => refOf(x).some((r) => referenceMatches(r, asked)));
  if (!hit) throw new UsageError(`${source}: no image tagged ${asked} (it has ${items.flatMap(refOf).join(', ') || 'untagged images'})`);
  return hit;
}

/** Resolves image `tag` of the OCI layout in `root` (an index, possibly multi-platform). */
async function resolveOciLayout(root: string, tag: string | null, source: string): Promise<ResolvedImage> {
  const layout = await readJson<{ imageLayoutVersion?: string }>(join(root, 'oci-layout'), 'oci-layout');
  if (!layout.value.imageLayoutVersion) throw new ProvisiondError('oci-layout: no imageLayoutVersion: not an OCI image layout');
  const index = await readJson<{ manifests?: Descriptor[] }>(join(root, 'index.json'), 'index.json');
  const refs = (d: Descriptor): string[] => [d.annotations?.['org.opencontainers.image.ref.name'], d.annotations?.['io.containerd.image.name']].filter((r): r is string => !!r);
  let desc = pick(index.value.manifests ?? [], refs, tag, source);
  const reference = refs(desc)[0] ?? tag;
  for (let depth = 0; MEDIA_INDEX.includes(desc.mediaType ?? ''); depth++) {
    if (depth > 4) throw new ProvisiondError(`${source}: image indexes nested too deep`);
    const inner = await readJson<{ manifests?: Descriptor[] }>(await blob(root, desc, 'image index'), `image index ${desc.digest}`);
    const arch = GOARCH[process.arch] ?? process.arch;
    const forUs = (inner.value.manifests ?? []).filter((m) => (m.platform?.os ?? 'linux') === 'linux' && (m.platform?.architecture ?? arch) === arch);
    if (forUs.length === 0) {
      const has = (inner.value.manifests ?? []).map((m) => `${m.platform?.os}/${m.platform?.architecture}`).join(', ');
      throw new ProvisiondError(`${source}: no linux/${arch} image in its index (it has ${has || 'none'})`);
    }
    desc = forUs[0]!;
  }
  const manifest = await readJson<{ config?: Descriptor; layers?: Descriptor[] }>(await blob(root, desc, 'manifest'), `manifest ${desc.digest}`);
  if (!manifest.value.config || !Array.isArray(manifest.value.layers)) throw new ProvisiondError(`manifest ${desc.digest}: no config or layers`);
  const cfg = await readJson<ImageConfig>(await blob(root, manifest.value.config, 'image config'), 'image config');
  const layers = [];
  for (const [i, l] of manifest.value.layers.entries()) {
    if (/\+encrypted$/.test(l.mediaType ?? '')) throw new ProvisiondError(`layer ${i + 1}: encrypted layers are not supported`);
    layers.push({ file: await blob(root, l, `layer ${i + 1}`), digest: l.digest, diffId: cfg.value.rootfs?.diff_ids?.[i] ?? null });
  }
  return { reference, manifestDigest: desc.digest, config: cfg.value, configText: cfg.text, layers };
}

/** Resolves image `tag` of a `docker save` archive (manifest.json; newer Docker also writes an OCI layout beside it). */
async function resolveDockerArchive(files: ArchiveFiles, tag: string | null, source: string): Promise<ResolvedImage> {
  const manifest = await readJson<Array<{ Config?: string; RepoTags?: string[] | null; Layers?: string[] }>>(join(files.root, 'manifest.json'), 'manifest.json');
  if (!Array.isArray(manifest.value)) throw new ProvisiondError('manifest.json: not a docker save manifest');
  const m = pick(manifest.value, (x) => x.RepoTags ?? [], tag, source);
  if (!m.Config || !Array.isArray(m.Layers)) throw new ProvisiondError('manifest.json: an image without Config or Layers');
  const configFile = files.path(m.Config);
  const cfg = await readJson<ImageConfig>(configFile, `image config ${m.Config}`);
  // The config's name is its own digest (`<hex>.json` or `blobs/sha256/<hex>`).
  const hex = /([0-9a-f]{64})(?:\.json)?$/.exec(m.Config)?.[1];
  if (hex && (await sha256File(configFile)) !== `sha256:${hex}`) throw new ProvisiondError(`image config ${m.Config}: corrupt (its sha256 does not match its name)`);
  const layers = m.Layers.map((l, i) => {
    const lhex = /blobs\/sha256\/([0-9a-f]{64})$/.exec(l)?.[1];
    return { file: files.path(l), digest: lhex ? `sha256:${lhex}` : null, diffId: cfg.value.rootfs?.diff_ids?.[i] ?? null };
  });
  for (const [i, l] of layers.entries()) {
    if (l.digest && (await sha256File(l.file)) !== l.digest) throw new ProvisiondError(`layer ${i + 1} ${m.Layers[i]}: corrupt (its sha256 does not match its name)`);
  }
  return { reference: m.RepoTags?.[0] ?? tag, manifestDigest: null, config: cfg.value, configText: cfg.text, layers };
}

/** Counts what a layer did (for the import report). */
interface LayerStats {
  entries: number;
  bytes: number;
  whiteouts: number;
}

/**
 * Applies one layer tar (any compression) to `rootfs`. `dirs` collects directory modes and times,
 * applied once every layer is in (writing into a read-only folder must stay possible meanwhile).
 * Returns the layer's sha256 (uncompressed) for the diff_id check.
 */
async function applyLayer(file: string, rootfs: string, dirs: Map<string, { mode: number; mtime: Date }>, asRoot: boolean, stats: LayerStats): Promise<string> {
  const { stream, done } = await openTarStream(file);
  const hash = createHash('sha256');
  const hashing = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  const extract = tar.extract();
  /** Paths this layer wrote: an opaque whiteout removes only the lower layers' entries. */
  const mine = new Set<string>();
  /** Folders known to be real folders (not symlinks) on disk; cleared whenever something is removed or linked. */
  let real = new Set<string>(['']);
  const where = (raw: string) => `layer entry ${JSON.stringify(raw)}`;

  const assertNoSymlinkAbove = async (name: string, raw: string): Promise<void> => {
    const parts = name.split('/');
    let at = '';
    for (let i = 0; i < parts.length - 1; i++) {
      at = at ? `${at}/${parts[i]}` : parts[i]!;
      if (real.has(at)) continue;
      const st = await lstat(join(rootfs, at)).catch(() => null);
      if (st?.isSymbolicLink()) throw new ProvisiondError(`${where(raw)}: below a symbolic link (${at})`);
      if (st && !st.isDirectory()) throw new ProvisiondError(`${where(raw)}: below ${at}, which is not a folder`);
      if (st) real.add(at);
    }
  };
  const remove = async (name: string): Promise<void> => {
    await rm(join(rootfs, name), { recursive: true, force: true });
    dirs.delete(name);
    for (const d of [...dirs.keys()]) if (d.startsWith(`${name}/`)) dirs.delete(d);
    real = new Set(['']);
  };

  const consume = async (): Promise<void> => {
    for await (const entry of extract) {
      const h = entry.header;
      const name = safeEntryName(h.name);
      if (name === '') {
        entry.resume();
        continue;
      }
      const base = posix.basename(name);
      const parent = posix.dirname(name) === '.' ? '' : posix.dirname(name);
      await assertNoSymlinkAbove(name, h.name);
      if (base === '.wh..wh..opq') {
        // Opaque: the folder keeps only what this layer puts in it.
        const dir = join(rootfs, parent);
        for (const child of await readdir(dir).catch(() => [] as string[])) {
          const rel = parent ? `${parent}/${child}` : child;
          if (!mine.has(rel)) await remove(rel);
        }
        stats.whiteouts++;
        entry.resume();
        continue;
      }
      if (base.startsWith('.wh.')) {
        const target = parent ? `${parent}/${base.slice(4)}` : base.slice(4);
        if (!base.slice(4) || base.slice(4) === '.' || base.slice(4) === '..') throw new ProvisiondError(`${where(h.name)}: bad whiteout`);
        await remove(target);
        stats.whiteouts++;
        entry.resume();
        continue;
      }
      const path = join(rootfs, name);
      const mode = (h.mode ?? 0o644) & 0o7777;
      const mtime = h.mtime ?? new Date(0);
      await mkdir(dirname(path), { recursive: true });
      const existing = await lstat(path).catch(() => null);
      if (existing && !(existing.isDirectory() && h.type === 'directory')) await remove(name);
      stats.entries++;
      switch (h.type) {
        case 'directory':
          await mkdir(path, { recursive: true });
          dirs.set(name, { mode, mtime });
          entry.resume();
          break;
        case 'file':
        case 'contiguous-file':
          await pipeline(entry, createWriteStream(path, { mode: 0o600 }) as Writable);
          stats.bytes += h.size ?? 0;
          await chmod(path, mode);
          await utimes(path, mtime, mtime);
          break;
        case 'symlink': {
          const target = h.linkname ?? '';
          if (!symlinkStaysInside(`rootfs/${name}`, target)) throw new ProvisiondError(`${where(h.name)}: symbolic link to ${JSON.stringify(target)} leaves the root file system`);
          await symlink(target, path);
          real = new Set(['']);
          await lutimes(path, mtime, mtime).catch(() => {});
          entry.resume();
          break;
        }
        case 'link': {
          const target = safeEntryName(h.linkname ?? '');
          if (!target) throw new ProvisiondError(`${where(h.name)}: hard link without a target`);
          await assertNoSymlinkAbove(target, h.name);
          const st = await lstat(join(rootfs, target)).catch(() => null);
          if (!st || st.isDirectory()) throw new ProvisiondError(`${where(h.name)}: hard link to ${JSON.stringify(h.linkname)}, which is not a file of the image`);
          await link(join(rootfs, target), path);
          entry.resume();
          break;
        }
        case 'character-device':
        case 'block-device':
        case 'fifo': {
          if (!asRoot) throw new ProvisiondError(`${where(h.name)}: device nodes need root (run the import as root)`);
          const kind = h.type === 'fifo' ? 'p' : h.type === 'block-device' ? 'b' : 'c';
          await runMknod(kind === 'p' ? [path, 'p'] : [path, kind, String(h.devmajor ?? 0), String(h.devminor ?? 0)], mode);
          entry.resume();
          break;
        }
        default:
          throw new ProvisiondError(`${where(h.name)}: unsupported type ${h.type}`);
      }
      mine.add(name);
      if (asRoot && h.type !== 'link') {
        const own = h.type === 'symlink' ? lchown : chown;
        await own(path, h.uid ?? 0, h.gid ?? 0);
        if (h.type !== 'symlink' && (mode & 0o7000) !== 0) await chmod(path, mode); // chown clears setuid bits
      }
    }
  };
  await readTar(stream, extract, consume, hashing);
  await done;
  // tar-stream stops at the end-of-archive blocks; the rest of the stream still counts for the digest.
  await new Promise<void>((resolve) => (hashing.writableFinished ? resolve() : hashing.on('finish', () => resolve())));
  return `sha256:${hash.digest('hex')}`;
}

/** The text of a capsule config for an imported image. */
function capsuleConfigFor(src: ImageSource, image: ResolvedImage): string {
  const ref = image.reference ? ` ${image.reference}` : '';
  return formatCapsuleConfig({ description: `imported from ${src.kind}:${basename(src.path)}${ref}` });
}

/**
 * Imports a container image as VNFS `name` (default: from the file or folder name). The image's
 * config (environment, entrypoint, labels) is kept beside the rootfs as `oci-config.json`.
 */
export async function importImage(statedir: string, src: ImageSource, opts: { name?: string; force?: boolean; asRoot?: boolean } = {}): Promise<OciImportResult> {
  const source = `${src.kind}:${src.path}${src.tag ? `:${src.tag}` : ''}`;
  const name = opts.name ?? nameFromFile(src.path.replace(/\/+$/, ''));
  if (!isPlainName(name)) throw new UsageError(`cannot name a vnfs ${JSON.stringify(name)} (from ${src.path}): give --name`);
  const dest = capsuleDir(statedir, name);
  if (existsSync(dest) && !opts.force) throw new UsageError(`vnfs ${name} exists already (delete it first, or --force to replace it)`);
  if (src.kind === 'oci' && !statSync(src.path).isDirectory()) throw new UsageError(`${source}: oci: takes an image layout folder (for a file, oci-archive:)`);
  const asRoot = opts.asRoot ?? process.getuid?.() === 0;
  await mkdir(vnfsRoot(statedir), { recursive: true });
  const tmp = join(vnfsRoot(statedir), `.import-${name}-${process.pid}-${randomBytes(3).toString('hex')}`);
  await mkdir(tmp);
  try {
    let image: ResolvedImage;
    if (src.kind === 'oci') {
      image = await resolveOciLayout(src.path, src.tag, source);
    } else {
      const files = await ArchiveFiles.extract(src.path, join(tmp, '.archive'));
      image =
        src.kind === 'oci-archive' || (!existsSync(join(files.root, 'manifest.json')) && existsSync(join(files.root, 'index.json')))
          ? await resolveOciLayout(files.root, src.tag, source)
          : await resolveDockerArchive(files, src.tag, source);
    }
    if (image.config.os && image.config.os !== 'linux') throw new ProvisiondError(`the image is for ${image.config.os}, not linux`);
    const rootfs = join(tmp, 'rootfs');
    await mkdir(rootfs, { mode: 0o755 });
    const dirs = new Map<string, { mode: number; mtime: Date }>();
    const stats: LayerStats = { entries: 0, bytes: 0, whiteouts: 0 };
    for (const [i, layer] of image.layers.entries()) {
      let diff: string;
      try {
        diff = await applyLayer(layer.file, rootfs, dirs, asRoot, stats);
      } catch (err) {
        throw new ProvisiondError(`layer ${i + 1} of ${image.layers.length}: ${(err as Error).message}`, { cause: err });
      }
      if (layer.diffId && diff !== layer.diffId) throw new ProvisiondError(`layer ${i + 1} of ${image.layers.length}: its content does not match the image config (diff_id ${layer.diffId}, got ${diff})`);
    }
    // Deepest first, so a read-only parent does not refuse its children's times.
    for (const [d, { mode, mtime }] of [...dirs].sort((a, b) => b[0].length - a[0].length)) {
      await chmod(join(rootfs, d), mode);
      await utimes(join(rootfs, d), mtime, mtime);
    }
    await rm(join(tmp, '.archive'), { recursive: true, force: true });
    await writeFile(join(tmp, 'config'), capsuleConfigFor(src, image));
    await writeFile(join(tmp, 'oci-config.json'), image.configText);
    // lstat: an init is often a symlink to an absolute path, which means nothing on the master.
    const noInit = !(await Promise.all(['sbin/init', 'usr/sbin/init', 'init'].map((p) => lstat(join(rootfs, p)).then(() => true, () => false)))).some(Boolean);
    const links = await installCapsule(statedir, name, tmp);
    return { name, source, reference: image.reference, layers: image.layers.length, entries: stats.entries, bytes: stats.bytes, whiteouts: stats.whiteouts, links, noInit };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (err instanceof UsageError) throw err;
    throw new ProvisiondError(`importing ${source}: ${(err as Error).message}`, { cause: err });
  }
}
