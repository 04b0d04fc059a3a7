/**
 * What the PXE-boot tests need from the machine, and the skip rule: without root or QEMU they skip
 * with one line saying why and how to enable them, except under CI (CI=true), where a skip is a
 * failure so that CI can never go green without booting.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { OVMF_CODE, OVMF_VARS } from './vm.js';

export const E2E_PACKAGES = ['qemu-system-x86', 'ipxe-qemu', 'ovmf', 'ipxe', 'radvd', 'iproute2', 'curl'];

/** Why the e2e tests cannot run here, or null when they can. */
export function missingPrerequisite(): string | null {
  if (process.platform !== 'linux') return 'not linux';
  if (process.getuid?.() !== 0) return 'not root (network namespaces and taps need root)';
  for (const cmd of ['qemu-system-x86_64', 'ip', 'radvd', 'curl']) {
    if (!onPath(cmd)) return `${cmd} not found`;
  }
  for (const file of [OVMF_CODE, OVMF_VARS, '/usr/lib/ipxe/qemu/pxe-virtio.rom', '/usr/lib/ipxe/undionly.kpxe', '/usr/lib/ipxe/snponly.efi']) {
    if (!readable(file)) return `${file} missing`;
  }
  if (!readable('/dev/net/tun')) return '/dev/net/tun missing';
  return null;
}

export const HOW_TO_ENABLE = `run as root with: apt-get install ${E2E_PACKAGES.join(' ')} (see README, "Tests")`;

interface Gate {
  fail(msg: string): unknown;
  plan(n: number, comment?: string): unknown;
}

/**
 * Returns true when the e2e tests can run. Otherwise skips the whole file with the reason, or fails it
 * under CI=true.
 */
export function e2eGate(t: Gate): boolean {
  const reason = missingPrerequisite();
  if (!reason) return true;
  if (process.env.CI === 'true') {
    t.fail(`PXE-boot e2e tests cannot run under CI: ${reason}; ${HOW_TO_ENABLE}`);
  } else {
    t.plan(0, `skipping PXE-boot e2e tests: ${reason}; ${HOW_TO_ENABLE}`);
  }
  return false;
}

function onPath(cmd: string): boolean {
  const dirs = (process.env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/sbin']);
  return dirs.some((d) => {
    try {
      accessSync(join(d, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function readable(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}
