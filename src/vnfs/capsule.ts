/**
 * A VNFS capsule on the master: the folder `<statedir>/vnfs/<name>/` holding `config` (YAML),
 * `rootfs/` (the node's root file system), optional `nodescripts/<state>/*`, and the built image
 * `image.cpio.gz` with its `image.cpio.gz.sha256` sidecar.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { ProvisiondError, UsageError } from '../util/errors.js';
import { isPlainName } from '../util/names.js';

export const IMAGE_FILE = 'image.cpio.gz';
export const SIDECAR_FILE = 'image.cpio.gz.sha256';
/** What the stage-1 unpacks instead of the image when it kexecs the VNFS's own kernel (skeleton.ts). */
export const SKELETON_FILE = 'skeleton.cpio.gz';
export const SKELETON_SIDECAR = 'skeleton.cpio.gz.sha256';

/** The capsule's `config`. */
export const capsuleConfigSchema = z
  .object({
    /** One line describing the VNFS (shown by `vnfs list`). */
    description: z.string().default(''),
    /** Extra kernel arguments when the VNFS boots its own kernel. */
    kernelArgs: z.string().default(''),
    /** Path of the VNFS's own kernel inside rootfs (e.g. /boot/vmlinuz); null = keep the stage-1 kernel. */
    kernel: z.string().nullable().default(null),
    /** Its initrd inside rootfs, used with `kernel`. */
    initrd: z.string().nullable().default(null),
    /** gzip level of the image: 1 (fast, bigger) .. 9 (slow, smaller). */
    compression: z.number().int().min(1).max(9).default(6),
  })
  .strict();

export type CapsuleConfig = z.infer<typeof capsuleConfigSchema>;

/** `<statedir>/vnfs`. */
export function vnfsRoot(statedir: string): string {
  return join(statedir, 'vnfs');
}

/** The folder of VNFS `name`, after checking the name is a plain name. */
export function capsuleDir(statedir: string, name: string): string {
  if (!isPlainName(name)) throw new UsageError(`invalid vnfs name ${JSON.stringify(name)}: use letters, digits and . _ + - only`);
  return join(vnfsRoot(statedir), name);
}

/** True when VNFS `name` exists (has a config, a rootfs or an image). For `node set vnfs` validation. */
export function vnfsExists(statedir: string, name: string): boolean {
  if (!isPlainName(name)) return false;
  const dir = join(vnfsRoot(statedir), name);
  return ['config', 'rootfs', IMAGE_FILE].some((f) => existsSync(join(dir, f))) && statSync(dir).isDirectory();
}

/**
 * The sha256 of VNFS `name`'s current image (from its `.sha256` sidecar, written with the image);
 * null when it has no image yet or the name is not a VNFS.
 */
export async function currentImageSha(statedir: string, name: string): Promise<string | null> {
  if (!isPlainName(name)) return null;
  try {
    const sum = (await readFile(join(vnfsRoot(statedir), name, SIDECAR_FILE), 'utf8')).trim().split(/\s+/)[0] ?? '';
    return /^[0-9a-f]{64}$/.test(sum) ? sum : null;
  } catch {
    return null;
  }
}

/** The sha256s of the current images of several VNFS (each read once). */
export async function currentImages(statedir: string, names: Iterable<string>): Promise<Map<string, string | null>> {
  const uniq = [...new Set(names)];
  const sums = await Promise.all(uniq.map((n) => currentImageSha(statedir, n)));
  return new Map(uniq.map((n, i) => [n, sums[i]!]));
}

/** Names of all VNFS capsules, sorted. */
export async function listVnfsNames(statedir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(vnfsRoot(statedir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.filter((n) => !n.startsWith('.') && vnfsExists(statedir, n)).sort();
}

/** Parses a capsule config text; `where` names it in errors. An empty file gives the defaults. */
export function parseCapsuleConfig(text: string, where: string): CapsuleConfig {
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (err) {
    throw new ProvisiondError(`${where}: not YAML: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const r = capsuleConfigSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ProvisiondError(`${where}: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
  }
  return r.data;
}

/** Reads VNFS `name`'s config (defaults when it has none). */
export async function readCapsuleConfig(statedir: string, name: string): Promise<CapsuleConfig> {
  const file = join(capsuleDir(statedir, name), 'config');
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return parseCapsuleConfig(text, file);
}

/** The config file text for `config`, commented for the admin who opens it. */
export function formatCapsuleConfig(config: Partial<CapsuleConfig>): string {
  const full = capsuleConfigSchema.parse(config);
  return [
    '# VNFS capsule configuration (provisiond).',
    '# description: one line shown by `provisiond vnfs list`',
    '# kernel/initrd: paths inside rootfs of the VNFS\'s own kernel; when set and the stage-1 has kexec, nodes kexec into it',
    '# kernelArgs: extra kernel arguments for that kernel',
    '# compression: gzip level of image.cpio.gz, 1 (fast) .. 9 (small)',
    stringify(full).trimEnd(),
    '',
  ].join('\n');
}

/** Writes a capsule config. */
export async function writeCapsuleConfig(dir: string, config: Partial<CapsuleConfig>): Promise<void> {
  await writeFile(join(dir, 'config'), formatCapsuleConfig(config));
}
