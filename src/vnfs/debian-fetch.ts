/**
 * The stage-1 ingredients taken from Debian packages without installing them: a kernel with its
 * modules (the generic `linux-image-amd64`, or `linux-image-cloud-amd64`), a static busybox
 * (`busybox-static`, which conflicts with the `busybox` package, hence `dpkg -x`) and `kexec`
 * (`kexec-tools`). Each .deb is
 * fetched once with `apt-get download` into the cache and extracted beside it; later calls work
 * offline from the cache.
 *
 * Cache: `$PROVISIOND_CACHE`, else `$XDG_CACHE_HOME/provisiond`, else `~/.cache/provisiond`.
 * CI and the end-to-end tests call `fetchStage1Parts()` (or `node --import tsx src/vnfs/debian-fetch.ts`)
 * to fill it before the tests run.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { ProvisiondError } from '../util/errors.js';

const run = promisify(execFile);

/** The folder .debs are downloaded to and extracted in. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PROVISIOND_CACHE) return env.PROVISIOND_CACHE;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'provisiond');
}

async function sh(cmd: string, args: string[], cwd?: string): Promise<string> {
  try {
    return (await run(cmd, args, { cwd, maxBuffer: 16 << 20, env: { ...process.env, LC_ALL: 'C' } })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string; code?: string };
    const detail = (e.stderr || e.message).trim().split('\n').filter(Boolean).pop();
    if (e.code === 'ENOENT') throw new ProvisiondError(`${cmd} not found: install it (Debian package ${cmd === 'depmod' ? 'kmod' : cmd === 'apt-get' ? 'apt' : 'dpkg'})`, { cause: err });
    throw new ProvisiondError(`${cmd} ${args.join(' ')}: ${detail}`, { cause: err });
  }
}

/** The concrete package behind a meta package (`linux-image-cloud-amd64` -> `linux-image-6.1.0-56-cloud-amd64`). */
async function concretePackage(pkg: string): Promise<string> {
  const out = await sh('apt-cache', ['depends', pkg]);
  const dep = out.split('\n').map((l) => l.trim()).find((l) => /^Depends: linux-image-\d/.test(l));
  return dep ? dep.slice('Depends: '.length) : pkg;
}

/**
 * Extracted tree of Debian package `pkg` (meta packages resolved), downloading it when the cache
 * has none. `prefer` may list several names tried in order (cloud kernel, then generic).
 */
export async function debianPackageTree(prefer: string[], log: (msg: string) => void = () => {}, cache = cacheDir()): Promise<string> {
  await mkdir(cache, { recursive: true });
  // Offline first: `<name>.current` names the tree extracted last time for that name.
  for (const p of prefer) {
    const marker = join(cache, `${p}.current`);
    const tree = existsSync(marker) ? join(cache, (await readFile(marker, 'utf8')).trim()) : '';
    if (tree && existsSync(tree)) return tree;
  }
  const errors: string[] = [];
  for (const p of prefer) {
    try {
      const concrete = await concretePackage(p);
      log(`downloading ${concrete} with apt-get download into ${cache}`);
      await sh('apt-get', ['download', '-q', concrete], cache);
      const deb = (await readdir(cache)).filter((n) => n.startsWith(`${concrete}_`) && n.endsWith('.deb')).sort().pop();
      if (!deb) throw new ProvisiondError(`apt-get download ${concrete}: no .deb appeared`);
      const tree = join(cache, deb.replace(/\.deb$/, '.tree'));
      const tmp = `${tree}.tmp-${process.pid}`;
      await rm(tmp, { recursive: true, force: true });
      log(`extracting ${deb}`);
      await sh('dpkg', ['-x', join(cache, deb), tmp]);
      await rename(tmp, tree);
      await writeFile(join(cache, `${p}.current`), `${basename(tree)}\n`);
      return tree;
    } catch (err) {
      errors.push(`${p}: ${(err as Error).message}`);
    }
  }
  throw new ProvisiondError(`fetching ${prefer.join(' or ')}: ${errors.join('; ')} (run apt-get update, or give the files with --kernel/--modules/--busybox)`);
}

export interface KernelParts {
  /** The kernel image. */
  vmlinuz: string;
  /** `lib/modules/<version>` of that kernel (modules.dep generated when missing). */
  modules: string;
  version: string;
}

/** Finds the kernel and its modules in an extracted linux-image tree; runs `depmod -b` when modules.dep is missing. */
export async function kernelFromTree(tree: string): Promise<KernelParts> {
  const boot = join(tree, 'boot');
  const vmlinuz = existsSync(boot) ? (await readdir(boot)).filter((n) => n.startsWith('vmlinuz-')).sort().pop() : undefined;
  if (!vmlinuz) throw new ProvisiondError(`no boot/vmlinuz-* in ${tree}`);
  const version = vmlinuz.slice('vmlinuz-'.length);
  const modules = join(tree, 'lib/modules', version);
  await ensureModulesDep(modules);
  return { vmlinuz: join(boot, vmlinuz), modules, version };
}

/** Runs `depmod -b` for a `<root>/lib/modules/<version>` folder that has no modules.dep (kernel .debs ship none). */
export async function ensureModulesDep(modules: string): Promise<void> {
  if (existsSync(join(modules, 'modules.dep'))) return;
  const parts = modules.replace(/\/+$/, '').split('/');
  const version = parts.pop()!;
  if (parts.slice(-2).join('/') !== 'lib/modules') throw new ProvisiondError(`${modules}: has no modules.dep and is not a <root>/lib/modules/<version> folder`);
  await sh('depmod', ['-b', parts.slice(0, -2).join('/') || '/', version]);
}

/**
 * Which Debian kernel the stage-1 boots: `generic` (linux-image-amd64, the drivers of physical NICs:
 * igb, ixgbe, i40e, ice, e1000e, bnxt_en, tg3, qede, mlx4/mlx5...) or `cloud`
 * (linux-image-cloud-amd64: virtio and the clouds' NICs only, smaller, for VMs).
 */
export type KernelFlavour = 'generic' | 'cloud';

/** The Debian meta package of a kernel flavour. */
export function kernelPackage(flavour: KernelFlavour): string {
  return flavour === 'cloud' ? 'linux-image-cloud-amd64' : 'linux-image-amd64';
}

/** Debian's stage-1 kernel of `flavour` (default generic), fetched into the cache when missing. */
export async function fetchKernel(log?: (msg: string) => void, flavour: KernelFlavour = 'generic'): Promise<KernelParts> {
  return kernelFromTree(await debianPackageTree([kernelPackage(flavour)], log));
}

/** Path of the static busybox from `busybox-static`, fetched into the cache when missing. */
export async function fetchBusybox(log?: (msg: string) => void): Promise<string> {
  const tree = await debianPackageTree(['busybox-static'], log);
  const bin = join(tree, 'bin/busybox');
  if (!existsSync(bin)) throw new ProvisiondError(`no bin/busybox in ${tree}`);
  return bin;
}

/**
 * Path of `kexec` from Debian's `kexec-tools`, fetched into the cache when missing: the stage-1
 * carries it to boot a VNFS's own kernel. It is dynamically linked (the initramfs build adds its
 * libraries, found with ldd).
 */
export async function fetchKexec(log?: (msg: string) => void): Promise<string> {
  const tree = await debianPackageTree(['kexec-tools'], log);
  const bin = ['sbin/kexec', 'usr/sbin/kexec'].map((p) => join(tree, p)).find((p) => existsSync(p));
  if (!bin) throw new ProvisiondError(`no sbin/kexec in ${tree}`);
  return bin;
}

/** Fills the cache with everything `initramfs build` needs (CI calls this before the tests). */
export async function fetchStage1Parts(log?: (msg: string) => void, flavour: KernelFlavour = 'generic'): Promise<{ kernel: KernelParts; busybox: string }> {
  const kernel = await fetchKernel(log, flavour);
  const busybox = await fetchBusybox(log);
  await fetchKexec(log);
  return { kernel, busybox };
}

// `node --import tsx src/vnfs/debian-fetch.ts [generic|cloud]` fills the cache.
if (import.meta.url === `file://${process.argv[1]}`) {
  fetchStage1Parts((m) => process.stderr.write(`${m}\n`), process.argv[2] === 'cloud' ? 'cloud' : 'generic').then(
    (r) => process.stdout.write(`kernel ${r.kernel.vmlinuz}\nmodules ${r.kernel.modules}\nbusybox ${r.busybox}\n`),
    (err: Error) => {
      process.stderr.write(`provisiond: ${err.message}\n`);
      process.exit(1);
    },
  );
}
