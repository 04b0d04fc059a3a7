/**
 * The files of a VNFS's image as one unit another server can take over: what a capsule has now
 * (`readLocalImage`: the image's sha256 and size, its skeleton's, the config text), and putting an
 * image fetched from elsewhere in place (`installImage`) so that this statedir serves exactly it:
 * config first, then the skeleton, then the image and its sidecar, each renamed over the old one,
 * and a stamp that tells `ensureImage` the image is current for this rootfs (no rebuild over it).
 */
import { readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { IMAGE_FILE, SIDECAR_FILE, SKELETON_FILE, SKELETON_SIDECAR, capsuleDir, parseCapsuleConfig } from './capsule.js';
import { forgetImageChecks, STAMP_FILE, treeFingerprint, writeAtomic, type Stamp } from './image.js';

/** What a capsule holds now; null when it has no image (or its sidecar is missing or bad). */
export interface LocalImage {
  sha256: string;
  bytes: number;
  /** When the image file was written (ms). */
  mtimeMs: number;
  skeletonSha256: string | null;
  /** The capsule's `config` text, or null when it has none. */
  config: string | null;
}

async function sidecarSha(file: string): Promise<string | null> {
  const sum = await readFile(file, 'utf8').then((t) => t.trim().split(/\s+/)[0] ?? '', () => '');
  return /^[0-9a-f]{64}$/.test(sum) ? sum : null;
}

export async function readLocalImage(statedir: string, name: string): Promise<LocalImage | null> {
  const dir = capsuleDir(statedir, name);
  const sha256 = await sidecarSha(join(dir, SIDECAR_FILE));
  const st = await stat(join(dir, IMAGE_FILE)).catch(() => null);
  if (!sha256 || !st?.isFile()) return null;
  const hasSkeleton = await stat(join(dir, SKELETON_FILE)).then((s) => s.isFile(), () => false);
  const skeletonSha256 = hasSkeleton ? await sidecarSha(join(dir, SKELETON_SIDECAR)) : null;
  const config = await readFile(join(dir, 'config'), 'utf8').catch(() => null);
  return { sha256, bytes: st.size, mtimeMs: st.mtimeMs, skeletonSha256, config };
}

export interface FetchedImage {
  /** A file in the capsule folder holding the image, its sha256 checked by the caller. */
  image: string;
  sha256: string;
  /** The skeleton likewise, or null: the VNFS has none (one on disk is removed). */
  skeleton: { file: string; sha256: string } | null;
  /** The config text to write, or null to keep this capsule's. */
  config: string | null;
}

/** Puts a fetched image in place (the temp files are renamed, so they must be in the capsule folder). */
export async function installImage(statedir: string, name: string, f: FetchedImage): Promise<void> {
  const dir = capsuleDir(statedir, name);
  const configFile = join(dir, 'config');
  if (f.config !== null) {
    parseCapsuleConfig(f.config, `config of vnfs ${name} from another server`);
    const current = await readFile(configFile, 'utf8').catch(() => null);
    if (current !== f.config) await writeAtomic(configFile, f.config);
  }
  const config = parseCapsuleConfig(await readFile(configFile, 'utf8').catch(() => ''), configFile);
  if (f.skeleton) {
    await rename(f.skeleton.file, join(dir, SKELETON_FILE));
    await writeAtomic(join(dir, SKELETON_SIDECAR), `${f.skeleton.sha256}  ${SKELETON_FILE}\n`);
  } else {
    for (const file of [SKELETON_SIDECAR, SKELETON_FILE]) await rm(join(dir, file), { force: true });
  }
  await rename(f.image, join(dir, IMAGE_FILE));
  await writeAtomic(join(dir, SIDECAR_FILE), `${f.sha256}  ${IMAGE_FILE}\n`);
  // This server's rootfs (if any) as it is now: the image stays until that rootfs changes here.
  const rootfs = join(dir, 'rootfs');
  const hasRootfs = await stat(rootfs).then((s) => s.isDirectory(), () => false);
  if (hasRootfs) {
    const stamp: Stamp = { fingerprint: await treeFingerprint(rootfs), sha256: f.sha256, level: config.compression, kernel: config.kernel };
    await writeAtomic(join(dir, STAMP_FILE), JSON.stringify(stamp));
  } else {
    await rm(join(dir, STAMP_FILE), { force: true });
  }
  forgetImageChecks();
}
