/** `provisiond initramfs build`: writes the stage-1 kernel and initramfs into the TFTP root. */
import type { Command } from 'commander';
import { copyFile, mkdir, rename, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { cliContext } from '../context.js';
import { UsageError } from '../../util/errors.js';
import { cacheDir, ensureModulesDep, fetchBusybox, fetchKernel, fetchKexec, kernelPackage, type KernelFlavour } from '../../vnfs/debian-fetch.js';
import { buildInitramfs, isFile } from '../../vnfs/initramfs.js';

interface BuildOptions {
  flavour?: string;
  ipoib?: boolean;
  kernel?: string;
  modules?: string | false;
  busybox?: string;
  kexec?: string | false;
  out?: string;
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

export async function buildAction(opts: BuildOptions, cmd: Command): Promise<void> {
  const ctx = cliContext(cmd);
  const say = (m: string): void => void ctx.err.write(`${m}\n`);
  const config = ctx.config();
  const tftpRoot = isAbsolute(config.tftp.root) ? config.tftp.root : join(config.statedir, config.tftp.root);
  const out = opts.out ? resolve(opts.out) : join(tftpRoot, 'initramfs.img');
  const flavour = (opts.flavour ?? 'generic') as KernelFlavour;
  if (flavour !== 'generic' && flavour !== 'cloud') throw new UsageError(`--flavour ${opts.flavour}: use generic or cloud`);
  if (opts.ipoib && opts.modules === false) throw new UsageError('--ipoib needs kernel modules: drop --no-modules');
  if (opts.kernel && !(await isFile(opts.kernel))) throw new UsageError(`--kernel ${opts.kernel}: no such file`);
  if (opts.busybox && !(await isFile(opts.busybox))) throw new UsageError(`--busybox ${opts.busybox}: no such file`);
  if (typeof opts.kexec === 'string' && !(await isFile(opts.kexec))) throw new UsageError(`--kexec ${opts.kexec}: no such file`);
  if (typeof opts.modules === 'string' && !(await isFile(join(opts.modules, 'modules.dep'))) && !(await isFile(join(opts.modules, 'modules.order')))) {
    throw new UsageError(`--modules ${opts.modules}: not a lib/modules/<version> folder (no modules.dep or modules.order)`);
  }

  let vmlinuz = opts.kernel;
  let modules: string | null = typeof opts.modules === 'string' ? resolve(opts.modules) : null;
  if (!vmlinuz) {
    say(`kernel: Debian ${kernelPackage(flavour)} (${flavour}; cache ${cacheDir()})`);
    const k = await fetchKernel(say, flavour);
    vmlinuz = k.vmlinuz;
    if (opts.modules !== false && !modules) modules = k.modules;
  } else if (modules) {
    await ensureModulesDep(modules);
  }
  const busybox = opts.busybox ?? (await fetchBusybox(say));
  say(`busybox: ${busybox}`);
  const started = Date.now();
  const kexec = opts.kexec === false ? null : typeof opts.kexec === 'string' ? opts.kexec : await fetchKexec(say);
  const r = await buildInitramfs({ out, busybox, modules, ipoib: opts.ipoib ?? false, kexec, log: say });
  const kernelOut = join(dirname(out), 'vmlinuz');
  if (resolve(vmlinuz) !== kernelOut) {
    await mkdir(dirname(kernelOut), { recursive: true });
    await copyFile(vmlinuz, `${kernelOut}.tmp`);
    await rename(`${kernelOut}.tmp`, kernelOut);
  }
  const ksize = (await stat(kernelOut)).size;
  ctx.out.write(`${kernelOut}  ${mib(ksize)}\n${out}  ${mib(r.bytes)}  (${r.entries} entries, ${r.modules} modules, sha256 ${r.sha256.slice(0, 16)}..., built in ${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  ctx.out.write(modules ? `NIC drivers (${r.drivers.length}): ${r.drivers.join(' ')}\n` : 'NIC drivers: none as modules (--no-modules: the kernel must have them built in)\n');
}
