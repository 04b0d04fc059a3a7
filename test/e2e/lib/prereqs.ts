/**
 * What the PXE-boot tests need from the machine. Without it they skip with one line saying why and
 * how to enable them, except under CI, where the skip is a failure (test/lib/gate.ts).
 */
import { isRoot, missingCommands, missingFiles } from '../../lib/gate.js';
import { OVMF_CODE, OVMF_VARS } from './vm.js';

export const E2E_PACKAGES = ['qemu-system-x86', 'ipxe-qemu', 'ovmf', 'ipxe', 'radvd', 'iproute2', 'curl'];

/** Why the e2e tests cannot run here, or null when they can. */
export function missingPrerequisite(): string | null {
  if (process.platform !== 'linux') return 'not linux';
  if (!isRoot) return 'not root (network namespaces and taps need root)';
  const cmd = missingCommands(['qemu-system-x86_64', 'ip', 'radvd', 'curl'])[0];
  if (cmd) return `${cmd} not found`;
  const file = missingFiles([OVMF_CODE, OVMF_VARS, '/usr/lib/ipxe/qemu/pxe-virtio.rom', '/usr/lib/ipxe/undionly.kpxe', '/usr/lib/ipxe/snponly.efi', '/dev/net/tun'])[0];
  if (file) return `${file} missing`;
  return null;
}

export const HOW_TO_ENABLE = `run as root with: apt-get install ${E2E_PACKAGES.join(' ')} (see docs/testing.md)`;

/** The reason for `gate()` in an e2e test file: what is missing and how to enable the tests, or null. */
export function e2eWhyNot(): string | null {
  const reason = missingPrerequisite();
  return reason === null ? null : `PXE-boot e2e tests: ${reason}; ${HOW_TO_ENABLE}`;
}
