/**
 * The stage-1 initramfs: a gzip-compressed newc cpio written by provisiond itself, holding a static
 * busybox and its applet links, `/init` and the client scripts from the repository's `initramfs/`
 * folder, `kexec` with its shared libraries (to boot a VNFS's own kernel), and the network drivers of the kernel (with their dependencies, and a modules.dep/alias
 * regenerated for that subset so busybox modprobe loads drivers by modalias).
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { copyFile, lstat, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { S_IFCHR, S_IFDIR, S_IFLNK, S_IFREG } from '../protocol/cpio/newc.js';
import { ProvisiondError } from '../util/errors.js';
import { CpioStreamWriter } from './cpio-tree.js';

const run = promisify(execFile);

/** The repository's `initramfs/` folder (sources of /init and the client). */
export const INITRAMFS_SOURCES = fileURLToPath(new URL('../../initramfs/', import.meta.url));

/**
 * Kernel module paths (relative to lib/modules/VER/kernel/) taken for the network: every Ethernet
 * driver (e1000/e1000e, igb, ixgbe, i40e, ice, mlx4/mlx5, bnxt, tg3, ...), the virtual NICs, and the
 * buses they sit on. Dependencies are added from modules.dep.
 */
export const NIC_MODULE_PATTERNS: RegExp[] = [
  /^drivers\/net\/ethernet\//,
  /^drivers\/net\/(virtio_net|vmxnet3\/vmxnet3|vmxnet3|xen-netfront|net_failover|hyperv\/hv_netvsc|mdio|phy\/[^/]+)\.ko/,
  /^drivers\/virtio\//,
  /^drivers\/net\/(phy|mdio|pcs)\//,
  /^net\/packet\/af_packet\.ko/,
];

/**
 * IPoIB (`--ipoib`): the IPoIB upper layer and the HCA drivers of the InfiniBand adapters HPC sites
 * run (Mellanox/NVIDIA ConnectX 3 to 7), with their dependencies (ib_core, ib_cm...).
 */
export const IPOIB_MODULE_PATTERNS: RegExp[] = [/^drivers\/infiniband\/ulp\/ipoib\//, /^drivers\/infiniband\/hw\/(mlx4|mlx5)\//];

/** Modules /init loads by name (not by modalias) when the stage-1 has IPoIB: nothing announces it. */
const IPOIB_LOAD = ['ib_ipoib'];

/** The NIC drivers among the modules chosen (for the report): Ethernet drivers and virtual NICs, by module name. */
export function nicDriverNames(modules: string[]): string[] {
  const names = modules
    .map((m) => m.replace(/^kernel\//, ''))
    .filter((m) => /^drivers\/net\/ethernet\//.test(m) || /^drivers\/net\/(virtio_net|vmxnet3\/vmxnet3|xen-netfront|hyperv\/hv_netvsc)\.ko/.test(m) || /^drivers\/infiniband\/(hw\/|ulp\/ipoib)/.test(m))
    .map((m) => m.split('/').pop()!.replace(/\.ko(\.xz|\.zst|\.gz)?$/, ''));
  return [...new Set(names)].sort();
}

export interface InitramfsOptions {
  out: string;
  busybox: string;
  /** lib/modules/<version> of the kernel; null = no modules (drivers built in). */
  modules: string | null;
  /** Folder whose files become the initramfs's own (default: the repository's initramfs/). */
  sources?: string;
  /** Also IPoIB: the InfiniBand HCA drivers and ib_ipoib, loaded at boot; /init brings up ib* as eth*. */
  ipoib?: boolean;
  /** A kexec binary (Debian kexec-tools') put in as sbin/kexec with the shared libraries it needs; null = none. */
  kexec?: string | null;
  log?: (msg: string) => void;
}

/** Selects the NIC modules of `modulesDir` and everything they depend on (paths relative to it). */
export function selectNicModules(modulesDir: string, patterns = NIC_MODULE_PATTERNS): string[] {
  const dep = readFileSync(join(modulesDir, 'modules.dep'), 'utf8');
  const deps = new Map<string, string[]>();
  for (const line of dep.split('\n')) {
    const [mod, rest] = line.split(':');
    if (mod && rest !== undefined) deps.set(mod, rest.trim().split(/\s+/).filter(Boolean));
  }
  const chosen = new Set<string>();
  const add = (m: string): void => {
    if (chosen.has(m)) return;
    chosen.add(m);
    for (const d of deps.get(m) ?? []) add(d);
  };
  for (const m of deps.keys()) {
    const inKernel = m.replace(/^kernel\//, '');
    if (patterns.some((p) => p.test(inKernel))) add(m);
  }
  return [...chosen].sort();
}

/** Copies the chosen modules into a staging lib/modules/VER and regenerates its index with depmod. */
async function stageModules(modulesDir: string, staging: string, ipoib: boolean): Promise<{ version: string; count: number; drivers: string[] }> {
  const version = modulesDir.replace(/\/+$/, '').split('/').pop()!;
  const mods = selectNicModules(modulesDir, ipoib ? [...NIC_MODULE_PATTERNS, ...IPOIB_MODULE_PATTERNS] : NIC_MODULE_PATTERNS);
  if (ipoib && !mods.some((m) => m.endsWith('/ib_ipoib.ko') || /\/ib_ipoib\.ko\./.test(m))) {
    throw new ProvisiondError(`--ipoib: kernel ${version} has no ib_ipoib module (use the generic kernel, --flavour generic)`);
  }
  const dest = join(staging, 'lib/modules', version);
  for (const m of mods) {
    await mkdir(dirname(join(dest, m)), { recursive: true });
    await copyFile(join(modulesDir, m), join(dest, m));
  }
  for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) {
    if (existsSync(join(modulesDir, f))) await copyFile(join(modulesDir, f), join(dest, f));
  }
  try {
    await run('depmod', ['-b', staging, version]);
  } catch (err) {
    throw new ProvisiondError(`depmod -b ${staging} ${version}: ${(err as Error).message}`, { cause: err });
  }
  // The binary indexes are for kmod's modprobe; busybox reads the text files.
  for (const f of await readdir(dest)) if (f.endsWith('.bin')) await rm(join(dest, f));
  if (ipoib) {
    await mkdir(join(staging, 'etc/provisiond'), { recursive: true });
    await writeFile(join(staging, 'etc/provisiond/modules'), `${IPOIB_LOAD.join('\n')}\n`);
  }
  return { version, count: mods.length, drivers: nicDriverNames(mods) };
}

/**
 * The shared libraries `binary` loads (and the dynamic loader), as absolute paths, from `ldd`.
 * Empty for a static binary.
 */
export async function sharedLibraries(binary: string): Promise<string[]> {
  let stdout: string;
  try {
    ({ stdout } = await run('ldd', [binary], { env: { ...process.env, LC_ALL: 'C' } }));
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: string | number };
    if (/not a dynamic executable/.test(`${e.stdout ?? ''}${e.stderr ?? ''}`)) return [];
    throw new ProvisiondError(`ldd ${binary}: ${e.code === 'ENOENT' ? 'ldd not found (Debian package libc-bin)' : (e.stderr ?? '').trim() || String(e.code)}`, { cause: err });
  }
  const libs: string[] = [];
  for (const line of stdout.split('\n')) {
    if (/=> not found/.test(line)) throw new ProvisiondError(`${binary}: ${line.trim()}: install the library on this machine`);
    const m = /=>\s+(\/\S+)\s+\(/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]!);
  }
  return libs;
}

/** Copies `kexec` to staging/sbin/kexec and its libraries to the same paths in staging (their contents, not links). */
async function stageKexec(kexec: string, staging: string): Promise<string[]> {
  await mkdir(join(staging, 'sbin'), { recursive: true });
  await copyFile(kexec, join(staging, 'sbin/kexec'));
  const libs = await sharedLibraries(kexec);
  for (const lib of libs) {
    await mkdir(dirname(join(staging, lib)), { recursive: true });
    await copyFile(lib, join(staging, lib));
  }
  return libs;
}

/** Applets of the busybox binary (`bin/sh`, `sbin/udhcpc`, ...), from `busybox --list-full`. */
async function busyboxApplets(busybox: string): Promise<string[]> {
  const { stdout } = await run(busybox, ['--list-full']);
  return stdout.split('\n').map((l) => l.trim()).filter((l) => l && l !== 'bin/busybox' && !l.includes('..'));
}

/**
 * Builds the initramfs at `out` (atomically). Returns its size and what went in.
 */
export async function buildInitramfs(opts: InitramfsOptions): Promise<{ bytes: number; entries: number; modules: number; drivers: string[]; sha256: string }> {
  const log = opts.log ?? (() => {});
  const sources = opts.sources ?? INITRAMFS_SOURCES;
  if (!existsSync(join(sources, 'init'))) throw new ProvisiondError(`building initramfs: no init script in ${sources}`);
  const staging = mkdtempSync(join(tmpdir(), 'provisiond-initramfs-'));
  try {
    let modCount = 0;
    let drivers: string[] = [];
    if (opts.ipoib && !opts.modules) throw new ProvisiondError('--ipoib needs the kernel\'s modules (not --no-modules)');
    cpSync(sources, staging, { recursive: true, verbatimSymlinks: true });
    if (opts.modules) {
      const r = await stageModules(opts.modules, staging, opts.ipoib ?? false);
      modCount = r.count;
      drivers = r.drivers;
      log(`${r.count} network driver modules of kernel ${r.version} (with dependencies)`);
    }
    if (opts.kexec) {
      const libs = await stageKexec(opts.kexec, staging);
      log(`kexec ${opts.kexec} with ${libs.length} shared libraries (${libs.map((l) => l.split('/').pop()).join(' ')})`);
    }
    const applets = await busyboxApplets(opts.busybox);
    await mkdir(dirname(opts.out), { recursive: true });
    // The archive is small (busybox and the NIC drivers): it is assembled in memory and gzipped as
    // ONE member, because the kernel refuses a compressed member that ends inside a cpio entry.
    const sink = new MemorySink();
    const cpio = new CpioStreamWriter(sink);
    const dirs = new Set<string>(['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'dev', 'proc', 'sys', 'run', 'tmp', 'newroot', 'etc', 'root', 'var', 'lib']);
    for (const a of applets) {
      for (let d = dirname(a); d !== '.'; d = dirname(d)) dirs.add(d);
    }
    for (const d of [...dirs].sort()) {
      if (!existsSync(join(staging, d))) await cpio.addMember({ name: d, mode: S_IFDIR | (d === 'tmp' ? 0o1777 : 0o755) });
    }
    // /dev/console must exist before devtmpfs is mounted, or init starts without a console.
    await cpio.addMember({ name: 'dev/console', mode: S_IFCHR | 0o600, rdevmajor: 5, rdevminor: 1 });
    await cpio.addMember({ name: 'bin/busybox', mode: S_IFREG | 0o755, data: readFileSync(opts.busybox) });
    // The staged tree before the applet links: it may hold a folder of theirs (sbin/ with kexec),
    // and the kernel creates no missing parent, so a folder must come before what is in it.
    await cpio.addTree(staging);
    for (const a of applets) {
      if (existsSync(join(staging, a))) continue;
      await cpio.addMember({ name: a, mode: S_IFLNK | 0o777, target: relative(dirname(`/${a}`), '/bin/busybox') });
    }
    await cpio.finish();
    const gz = gzipSync(sink.buffer(), { level: 6 });
    await mkdir(dirname(opts.out), { recursive: true });
    const tmp = `${opts.out}.tmp-${process.pid}`;
    await writeFile(tmp, gz, { mode: 0o644 });
    await rename(tmp, opts.out);
    return { bytes: gz.length, entries: cpio.entries, modules: modCount, drivers, sha256: createHash('sha256').update(gz).digest('hex') };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Collects the archive in memory (a CpioSink). */
class MemorySink {
  readonly #chunks: Buffer[] = [];
  #cur = Buffer.allocUnsafe(1 << 20);
  #fill = 0;

  async space(): Promise<Buffer> {
    if (this.#fill === this.#cur.length) {
      this.#chunks.push(this.#cur);
      this.#cur = Buffer.allocUnsafe(1 << 20);
      this.#fill = 0;
    }
    return this.#cur.subarray(this.#fill);
  }

  commit(n: number): void {
    this.#fill += n;
  }

  async write(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const room = await this.space();
      const n = buf.copy(room, 0, off);
      this.commit(n);
      off += n;
    }
  }

  buffer(): Buffer {
    return Buffer.concat([...this.#chunks, this.#cur.subarray(0, this.#fill)]);
  }
}

/** True when `path` is an existing file (for option checks). */
export async function isFile(path: string): Promise<boolean> {
  return lstat(path).then((s) => s.isFile() || s.isSymbolicLink(), () => false);
}
