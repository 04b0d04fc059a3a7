/**
 * A real distribution as a VNFS (`vnfs build NAME --distro debian:bookworm`): a minbase Debian root
 * made by mmdebstrap (debootstrap when mmdebstrap is missing) from the configured mirror, with
 * systemd, a kernel package inside (the node kexecs into it), root's password locked, and no
 * documentation, manual pages, locales, apt lists or caches. The finished tree is kept in the
 * provisiond cache (debian-fetch.ts cacheDir) under a key made of the suite, the package list and
 * the mirror, so a second build (CI, another VNFS of the same recipe) copies it instead of fetching.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ProvisiondError, UsageError } from '../util/errors.js';
import { cacheDir } from './debian-fetch.js';

/** Debian suites `--distro debian:SUITE` accepts (codenames and the archive's aliases). */
export const DEBIAN_SUITES = ['bullseye', 'bookworm', 'trixie', 'forky', 'sid', 'oldstable', 'stable', 'testing', 'unstable'];

/** Packages every distribution VNFS gets: systemd as init, udev and kmod for the kernel's devices and
 * modules, D-Bus (logind and networkd want it), and what the ready agent runs (wget) and ip. */
export const BASE_PACKAGES = ['systemd', 'systemd-sysv', 'udev', 'kmod', 'dbus', 'iproute2', 'wget'];

/** The kernel package installed inside by default (every NIC driver; linux-image-cloud-amd64 is smaller, for VMs). */
export const DEFAULT_KERNEL_PACKAGE = 'linux-image-amd64';

/** Paths dpkg does not unpack: what a diskless node never reads. */
export const PATH_EXCLUDES = ['/usr/share/doc/*', '/usr/share/man/*', '/usr/share/info/*', '/usr/share/locale/*', '/usr/share/lintian/*', '/usr/share/linda/*'];

/** Bumped when what a build does changes, so cached trees of the old recipe are not reused. */
const RECIPE_VERSION = 2;

export interface Distro {
  family: 'debian';
  suite: string;
}

/** Parses `--distro debian:bookworm`; a clear UsageError for anything else. */
export function parseDistro(text: string): Distro {
  const m = /^([a-z]+):([a-z0-9-]+)$/.exec(text.trim());
  if (!m) throw new UsageError(`--distro ${JSON.stringify(text)}: expected FAMILY:SUITE, e.g. debian:bookworm`);
  if (m[1] !== 'debian') throw new UsageError(`--distro ${text}: unknown distribution ${m[1]} (supported: debian:SUITE)`);
  if (!DEBIAN_SUITES.includes(m[2]!)) throw new UsageError(`--distro ${text}: unknown Debian suite ${m[2]} (known: ${DEBIAN_SUITES.join(', ')})`);
  return { family: 'debian', suite: m[2]! };
}

/** Parses `--packages a,b c`: Debian package names, refused when one is not a valid name. */
export function parsePackages(text: string | undefined): string[] {
  const names = (text ?? '').split(/[\s,]+/).filter(Boolean);
  for (const n of names) if (!/^[a-z0-9][a-z0-9+.-]+$/.test(n)) throw new UsageError(`--packages: ${JSON.stringify(n)} is not a Debian package name`);
  return names;
}

/**
 * The Debian mirror of an apt configuration: the URI of the first `deb` source (one-line or deb822
 * format) serving `suite`, else the first that is not a security archive. Null when there is none.
 * `files` maps file names (sources.list, *.list, *.sources) to their text.
 */
export function mirrorFromAptSources(files: Array<{ name: string; text: string }>, suite: string): string | null {
  const entries: Array<{ uri: string; suites: string[] }> = [];
  for (const { name, text } of files) {
    if (name.endsWith('.sources')) {
      for (const para of text.split(/\n\s*\n/)) {
        const field = (k: string): string => new RegExp(`^${k}:[ \\t]*(.*)$`, 'mi').exec(para)?.[1]?.trim() ?? '';
        if (!field('Types').split(/\s+/).includes('deb') || /^Enabled:\s*no/im.test(para)) continue;
        for (const uri of field('URIs').split(/\s+/).filter(Boolean)) entries.push({ uri, suites: field('Suites').split(/\s+/) });
      }
    } else if (name.endsWith('.list')) {
      for (const line of text.split('\n')) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m) entries.push({ uri: m[1]!, suites: [m[2]!] });
      }
    }
  }
  const usable = entries.filter((e) => /^(https?|file):/.test(e.uri));
  const hit = usable.find((e) => e.suites.includes(suite)) ?? usable.find((e) => !/security/.test(e.uri) && e.suites.some((s) => DEBIAN_SUITES.includes(s)));
  return hit ? hit.uri.replace(/\/+$/, '') : null;
}

/** The machine's Debian mirror, from /etc/apt (sources.list and sources.list.d); deb.debian.org when none. */
export async function machineMirror(suite: string, aptDir = '/etc/apt'): Promise<string> {
  const files: Array<{ name: string; text: string }> = [];
  const read = async (path: string, name: string): Promise<void> => {
    const text = await readFile(path, 'utf8').catch(() => null);
    if (text !== null) files.push({ name, text });
  };
  await read(join(aptDir, 'sources.list'), 'sources.list');
  const dir = join(aptDir, 'sources.list.d');
  for (const n of (await readdir(dir).catch(() => [] as string[])).sort()) await read(join(dir, n), n);
  return mirrorFromAptSources(files, suite) ?? 'http://deb.debian.org/debian';
}

export interface DistroRecipe {
  distro: Distro;
  /** The kernel package installed inside (default linux-image-amd64). */
  kernelPackage: string;
  /** Extra packages (`--packages`). */
  packages: string[];
  mirror: string;
}

/** Everything installed: the base, the kernel and the extras, sorted and without repeats. */
export function recipePackages(r: DistroRecipe): string[] {
  return [...new Set([...BASE_PACKAGES, r.kernelPackage, ...r.packages])].sort();
}

/** The cache key of a recipe: suite, package list and mirror (and the recipe version). */
export function recipeKey(r: DistroRecipe): string {
  const h = createHash('sha256').update(JSON.stringify({ v: RECIPE_VERSION, suite: r.distro.suite, packages: recipePackages(r), mirror: r.mirror }));
  return `debian-${r.distro.suite}-${h.digest('hex').slice(0, 16)}`;
}

/** Where the built tree of a recipe is cached. */
export function cachedTreeDir(r: DistroRecipe, cache = cacheDir()): string {
  return join(cache, 'vnfs', recipeKey(r), 'root');
}

/** What a build reports: a phase starting, or the package counts moving. */
export type DistroProgress = { phase: string } | { fetched: number; unpacked: number; configured: number };

/** Root's password field locked (`!` in front): nobody logs in as root with a password. Pure. */
export function lockRootInShadow(shadow: string): string {
  return shadow
    .split('\n')
    .map((line) => {
      const f = line.split(':');
      if (f[0] !== 'root' || f.length < 2) return line;
      if (!f[1]!.startsWith('!')) f[1] = `!${f[1] || '*'}`;
      return f.join(':');
    })
    .join('\n');
}

/** The newest kernel and its initrd in `<root>/boot` (paths inside the root), or null. */
export async function findBootKernel(root: string): Promise<{ kernel: string; initrd: string | null; version: string } | null> {
  const names = await readdir(join(root, 'boot')).catch(() => [] as string[]);
  const versions = names.filter((n) => n.startsWith('vmlinuz-')).map((n) => n.slice('vmlinuz-'.length));
  const version = versions.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).pop();
  if (!version) return null;
  const initrd = names.includes(`initrd.img-${version}`) ? `/boot/initrd.img-${version}` : null;
  return { kernel: `/boot/vmlinuz-${version}`, initrd, version };
}

/**
 * The cached tree of `recipe`, built first when the cache has none. Returns its path and whether
 * it came from the cache.
 */
export async function distroTree(recipe: DistroRecipe, onProgress: (p: DistroProgress) => void = () => {}, cache = cacheDir()): Promise<{ tree: string; cached: boolean }> {
  const tree = cachedTreeDir(recipe, cache);
  if (existsSync(join(tree, 'etc/os-release')) || existsSync(join(tree, 'usr/lib/os-release'))) return { tree, cached: true };
  const tmp = `${tree}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    await bootstrap(recipe, tmp, onProgress);
    onProgress({ phase: 'locking root, cleaning apt lists and caches' });
    await finishTree(tmp);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  await rm(tree, { recursive: true, force: true });
  await rename(tmp, tree);
  await writeFile(join(tree, '..', 'recipe.json'), `${JSON.stringify({ ...recipe, packages: recipePackages(recipe) }, null, 2)}\n`);
  return { tree, cached: false };
}

/** What mmdebstrap or debootstrap leave that a node does not need, and root's password locked. */
async function finishTree(root: string): Promise<void> {
  const shadow = join(root, 'etc/shadow');
  if (existsSync(shadow)) await writeFile(shadow, lockRootInShadow(await readFile(shadow, 'utf8')), { mode: 0o640 });
  for (const dir of ['var/lib/apt/lists', 'var/cache/apt', 'var/cache/debconf/templates.dat-old', 'usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/locale']) {
    const path = join(root, dir);
    if (!existsSync(path)) continue;
    for (const n of await readdir(path).catch(() => [] as string[])) {
      if (n === 'lock' || n === 'partial') continue;
      await rm(join(path, n), { recursive: true, force: true });
    }
  }
  // The kernel package's initrd would look for a root device: nodes boot the VNFS image itself as
  // the kernel's initramfs (kexec), so it only made every image bigger (15 of 103 MB with the
  // cloud kernel: download, checksum and the kernel's unpack at every boot).
  for (const n of await readdir(join(root, 'boot')).catch(() => [] as string[])) {
    if (n.startsWith('initrd.img')) await rm(join(root, 'boot', n), { force: true });
  }
  for (const link of ['initrd.img', 'initrd.img.old']) await rm(join(root, link), { force: true });
  // Each node gets its own machine-id at boot (nodescripts); an empty file means "not set yet" to systemd.
  await writeFile(join(root, 'etc/machine-id'), '');
  await rm(join(root, 'var/lib/dbus/machine-id'), { force: true });
  // debootstrap has no --dpkgopt: later apt-get installs inside the VNFS skip the same paths.
  await mkdir(join(root, 'etc/dpkg/dpkg.cfg.d'), { recursive: true });
  await writeFile(join(root, 'etc/dpkg/dpkg.cfg.d/10-provisiond-nodoc'), `# provisiond: a diskless node reads no documentation\n${PATH_EXCLUDES.map((p) => `path-exclude=${p}`).join('\n')}\n`);
}

/** The mmdebstrap command line of a recipe into `dest`. */
export function mmdebstrapArgs(r: DistroRecipe, dest: string): string[] {
  return [
    '--verbose',
    '--variant=minbase',
    `--include=${recipePackages(r).join(',')}`,
    '--aptopt=Acquire::Languages "none"',
    ...PATH_EXCLUDES.map((p) => `--dpkgopt=path-exclude=${p}`),
    r.distro.suite,
    dest,
    r.mirror,
  ];
}

async function bootstrap(r: DistroRecipe, dest: string, onProgress: (p: DistroProgress) => void): Promise<void> {
  try {
    await runTool('mmdebstrap', mmdebstrapArgs(r, dest), onProgress);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    onProgress({ phase: 'mmdebstrap not found: using debootstrap' });
    const args = ['--variant=minbase', `--include=${recipePackages(r).join(',')}`, r.distro.suite, dest, r.mirror];
    try {
      await runTool('debootstrap', args, onProgress);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ProvisiondError('vnfs build --distro: neither mmdebstrap nor debootstrap is installed (apt-get install mmdebstrap)', { cause: e });
      throw e;
    }
  }
}

/** Runs mmdebstrap/debootstrap, turning its output into progress; its last lines go into the error. */
function runTool(cmd: string, args: string[], onProgress: (p: DistroProgress) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' } });
    const tail: string[] = [];
    const counts = { fetched: 0, unpacked: 0, configured: 0 };
    let lastCount = 0;
    let partial = '';
    const onData = (chunk: Buffer): void => {
      const lines = (partial + chunk.toString('utf8')).split(/\r?\n/);
      partial = lines.pop() ?? '';
      for (const line of lines) {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        const phase = /^I: (.+?)\.*$/.exec(line);
        if (phase && !/^I: (running|skipping|automatically chosen|chroot architecture)|is now a symlink/.test(line)) onProgress({ phase: phase[1]! });
        else if (/^Get:\d+ /.test(line) || /^I: Retrieving /.test(line)) counts.fetched++;
        else if (/^Unpacking /.test(line) || /^I: Extracting /.test(line)) counts.unpacked++;
        else if (/^Setting up /.test(line) || /^I: Configuring /.test(line)) counts.configured++;
        else continue;
        if (Date.now() - lastCount > 200 && !phase) {
          lastCount = Date.now();
          onProgress({ ...counts });
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      onProgress({ ...counts });
      if (code === 0) return resolve();
      const why = tail.filter((l) => /^(E:|W:|dpkg: error|error)/i.test(l)).slice(-3).join('; ') || tail.slice(-3).join('; ');
      reject(new ProvisiondError(`${cmd} ${signal ? `killed by ${signal}` : `exited ${code}`}: ${why}`));
    });
  });
}
