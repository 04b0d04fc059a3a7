/**
 * The node image of a VNFS: `image.cpio.gz`, a gzip-compressed cpio (newc) of `rootfs/`, with a
 * `image.cpio.gz.sha256` sidecar in sha256sum format. Built streaming into a temp file and renamed
 * over the old one, so a node downloading the image meanwhile keeps a consistent file. A hidden
 * stamp (`.image.stamp`) keeps the fingerprint of the tree it was built from: `ensureImage` rebuilds
 * only when the rootfs changed since.
 */
import { randomBytes, createHash } from 'node:crypto';
import { lstat, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import { ProvisiondError } from '../util/errors.js';
import { IMAGE_FILE, SIDECAR_FILE, SKELETON_FILE, SKELETON_SIDECAR, capsuleDir, readCapsuleConfig } from './capsule.js';
import { CpioStreamWriter, bytewise, fingerprintLine } from './cpio-tree.js';
import { ParallelGzip } from './pgzip.js';
import { writeSkeleton } from './skeleton.js';

export const STAMP_FILE = '.image.stamp';
/** Freshness checks within this many ms of the last one reuse its answer (a boot storm asks 1,000 times). */
const RECHECK_MS = 1000;

export interface ImageResult {
  path: string;
  sha256: string;
}

export interface BuildProgress {
  bytesIn: number;
  bytesOut: number;
  entries: number;
}

export interface TreeImageOptions {
  level?: number;
  parallel?: number;
  onProgress?: (p: BuildProgress) => void;
}

/**
 * Writes `root` as a gzip-compressed newc cpio to `out` (atomically: temp file + rename).
 * Returns the sha256 and size of the compressed file and the tree's fingerprint.
 */
export async function writeTreeImage(root: string, out: string, opts: TreeImageOptions = {}): Promise<{ sha256: string; bytes: number; entries: number; fingerprint: string }> {
  const tmp = `${out}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'wx', 0o644);
  try {
    const gz = new ParallelGzip(fh, { level: opts.level, parallel: opts.parallel });
    const cpio = new CpioStreamWriter(gz);
    let timer: NodeJS.Timeout | undefined;
    if (opts.onProgress) {
      const report = (): void => opts.onProgress!({ bytesIn: gz.bytesIn, bytesOut: gz.bytesOut, entries: cpio.entries });
      timer = setInterval(report, 500);
    }
    try {
      await cpio.addTree(root);
      await cpio.finish();
    } finally {
      if (timer) clearInterval(timer);
    }
    const { sha256, bytes } = await gz.end();
    await fh.sync();
    await fh.close();
    await rename(tmp, out);
    return { sha256, bytes, entries: cpio.entries, fingerprint: cpio.fingerprint.digest('hex') };
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
}

/** The fingerprint of a tree without reading file data: lstat of every entry, in archive order. */
export async function treeFingerprint(root: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort(bytewise)) {
      const path = join(dir, name);
      const st = await lstat(path);
      if (st.isSocket()) continue;
      const arch = prefix ? `${prefix}/${name}` : name;
      h.update(fingerprintLine(arch, st));
      if (st.isDirectory()) await walk(path, arch);
    }
  };
  await walk(root, '');
  return h.digest('hex');
}

export interface Stamp {
  fingerprint: string;
  sha256: string;
  level: number;
  /** The config's kernel the skeleton was built for (null or missing: no skeleton). */
  kernel?: string | null;
}

async function readStamp(dir: string): Promise<Stamp | null> {
  try {
    return JSON.parse(await readFile(join(dir, STAMP_FILE), 'utf8')) as Stamp;
  } catch {
    return null;
  }
}

/** Builds VNFS `name`'s image now, whatever its state. */
export async function buildImage(statedir: string, name: string, logger: Logger, onProgress?: (p: BuildProgress) => void): Promise<ImageResult & { bytes: number; entries: number }> {
  const dir = capsuleDir(statedir, name);
  const rootfs = join(dir, 'rootfs');
  const isDir = await stat(rootfs).then((s) => s.isDirectory(), () => false);
  if (!isDir) throw new ProvisiondError(`building image of vnfs ${name}: ${rootfs} is missing`);
  const config = await readCapsuleConfig(statedir, name);
  const started = Date.now();
  const path = join(dir, IMAGE_FILE);
  const r = await writeTreeImage(rootfs, path, { level: config.compression, onProgress });
  await writeAtomic(join(dir, SIDECAR_FILE), `${r.sha256}  ${IMAGE_FILE}\n`);
  await buildSkeleton(dir, rootfs, config, logger, name);
  await writeAtomic(join(dir, STAMP_FILE), JSON.stringify({ fingerprint: r.fingerprint, sha256: r.sha256, level: config.compression, kernel: config.kernel } satisfies Stamp));
  logger.info({ vnfs: name, bytes: r.bytes, entries: r.entries, ms: Date.now() - started }, 'vnfs image built');
  return { path, sha256: r.sha256, bytes: r.bytes, entries: r.entries };
}

/**
 * The skeleton beside the image of a VNFS that boots its own kernel (skeleton.ts); none otherwise,
 * so a node never prepares a kexec from the skeleton of an earlier config.
 */
async function buildSkeleton(dir: string, rootfs: string, config: { kernel: string | null; compression: number }, logger: Logger, name: string): Promise<void> {
  if (!config.kernel) {
    for (const f of [SKELETON_SIDECAR, SKELETON_FILE]) await rm(join(dir, f), { force: true });
    return;
  }
  const s = await writeSkeleton(rootfs, join(dir, SKELETON_FILE), { kernel: config.kernel, level: config.compression });
  await writeAtomic(join(dir, SKELETON_SIDECAR), `${s.sha256}  ${SKELETON_FILE}\n`);
  logger.info({ vnfs: name, bytes: s.bytes, entries: s.entries }, 'vnfs skeleton built');
}

/** Writes `file` by a temp file and a rename: a reader sees the old text or the new, whole. */
export async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

const inflight = new Map<string, Promise<ImageResult>>();
const checked = new Map<string, { at: number; result: ImageResult }>();

/**
 * The image of VNFS `name`, rebuilt first when its rootfs changed since the last build (or the image
 * or sidecar is missing). Cheap when nothing changed: one lstat per rootfs entry, and nothing at all
 * within 1 s of the previous check (call forgetImageChecks after a watched change). Concurrent callers share one check/build. A capsule that has an
 * image but no rootfs (imported image only) is served as it is.
 */
export async function ensureImage(statedir: string, name: string, logger: Logger): Promise<ImageResult> {
  const dir = capsuleDir(statedir, name);
  const recent = checked.get(dir);
  if (recent && Date.now() - recent.at < RECHECK_MS) return recent.result;
  let p = inflight.get(dir);
  if (!p) {
    p = checkAndBuild(statedir, name, dir, logger).finally(() => inflight.delete(dir));
    inflight.set(dir, p);
  }
  const result = await p;
  checked.set(dir, { at: Date.now(), result });
  return result;
}

async function checkAndBuild(statedir: string, name: string, dir: string, logger: Logger): Promise<ImageResult> {
  const path = join(dir, IMAGE_FILE);
  const rootfs = join(dir, 'rootfs');
  const hasRootfs = await stat(rootfs).then((s) => s.isDirectory(), () => false);
  const sidecar = await readFile(join(dir, SIDECAR_FILE), 'utf8').then((t) => t.split(/\s/)[0] ?? '', () => '');
  const hasImage = await stat(path).then((s) => s.isFile(), () => false);
  if (!hasRootfs) {
    if (hasImage && /^[0-9a-f]{64}$/.test(sidecar)) return { path, sha256: sidecar };
    throw new ProvisiondError(`vnfs ${name}: no rootfs and no image in ${dir}`);
  }
  const stamp = await readStamp(dir);
  const config = await readCapsuleConfig(statedir, name);
  if (hasImage && stamp && stamp.sha256 === sidecar && stamp.level === config.compression) {
    if ((await treeFingerprint(rootfs)) === stamp.fingerprint) {
      // An image of an older provisiond, or a config whose kernel changed since: the skeleton alone.
      const hasSkeleton = await stat(join(dir, SKELETON_SIDECAR)).then((s) => s.isFile(), () => false);
      if ((stamp.kernel ?? null) !== config.kernel || Boolean(config.kernel) !== hasSkeleton) {
        await buildSkeleton(dir, rootfs, config, logger, name);
        await writeAtomic(join(dir, STAMP_FILE), JSON.stringify({ ...stamp, kernel: config.kernel } satisfies Stamp));
      }
      return { path, sha256: sidecar };
    }
    logger.info({ vnfs: name }, 'vnfs rootfs changed: rebuilding its image');
  }
  const r = await buildImage(statedir, name, logger);
  return { path: r.path, sha256: r.sha256 };
}

/** Forgets cached freshness answers (tests; the daemon after a watched change). */
export function forgetImageChecks(): void {
  checked.clear();
}
