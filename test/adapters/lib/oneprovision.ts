/**
 * What oneprovision (OpenNebula 5.8-5.12) does with a provision driver, for the tests of
 * adapters/opennebula: OpenNebula is not installable here, so this stands in for it, written from
 * its calling conventions (shared/ORCHESTRATORS.md): `cmd.join(' ')` run through a shell with an
 * empty stdin, `HOST_ID HOST` appended; on failure the message between the 8< markers of stderr;
 * poll's `KEY=VALUE` pairs split on blanks and `=`, GUEST_IP_ADDRESSES with its first character
 * dropped, split on commas and stripped of quotes. The deployment file is the HOST document
 * oneprovision writes.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO } from '../../lib/paths.js';

export const DRIVER_DIR = resolve(REPO, 'adapters/opennebula/pm/provisiond');

export interface DriverRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The message oneprovision shows: the text between the 8< markers, or null. */
  error: string | null;
}

export interface DriverOptions {
  /** The driver's settings file (PROVISIOND_PM_CONFIG). */
  config: string;
  stdin?: string;
  timeoutMs?: number;
  /** How to start the shell (e.g. inside a network namespace); node's spawn by default. */
  spawn?: (cmd: string, args: string[], options: SpawnOptions) => ChildProcess;
}

/** Runs `<DRIVER_DIR>/<action> args...` as oneprovision does (`args` already end with HOST_ID HOST). */
export function runDriver(action: string, args: string[], opts: DriverOptions): Promise<DriverRun> {
  const cmd = [join(DRIVER_DIR, action), ...args].join(' ');
  const start = opts.spawn ?? spawn;
  return new Promise((resolvePromise, reject) => {
    const child = start('sh', ['-c', cmd], { env: { ...process.env, PROVISIOND_PM_CONFIG: opts.config }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin!.on('error', () => {});
    child.stdin!.end(opts.stdin ?? '');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd}: still running after ${(opts.timeoutMs ?? 60_000) / 1000} s; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr, error: driverError(stderr) });
    });
  });
}

/** The first line between `ERROR MESSAGE --8<------` and `ERROR MESSAGE ------>8--`, as oneprovision reads it. */
export function driverError(stderr: string): string | null {
  const m = /ERROR MESSAGE --8<------\n([\s\S]*?)\nERROR MESSAGE ------>8--/.exec(stderr);
  return m ? m[1]!.split('\n')[0]! : null;
}

/** poll's answer as oneprovision reads it: the pairs, and the addresses it renames the host after. */
export function parsePoll(stdout: string): { pairs: Record<string, string>; ips: string[] } {
  const pairs: Record<string, string> = {};
  for (const word of stdout.trim().split(/\s+/)) {
    const [key, value] = word.split('=');
    if (key) pairs[key] = value ?? '';
  }
  const raw = pairs.GUEST_IP_ADDRESSES ?? '';
  const ips = raw
    .slice(1)
    .split(',')
    .map((ip) => ip.replace(/"/g, ''));
  return { pairs, ips };
}

/** The deployment file oneprovision writes for a host of `provision: {driver: provisiond, ...}`. */
export function deploymentXml(provision: Record<string, string>, name = 'provision-c968cbcf40716f8e18caddbb8757c2ca'): string {
  const keys = Object.entries(provision)
    .map(([k, v]) => `      <${k.toUpperCase()}>${v}</${k.toUpperCase()}>`)
    .join('\n');
  return `<HOST>
  <NAME>${name}</NAME>
  <IM_MAD>kvm</IM_MAD>
  <VM_MAD>kvm</VM_MAD>
  <PM_MAD>provisiond</PM_MAD>
  <TEMPLATE>
    <IM_MAD>kvm</IM_MAD>
    <VM_MAD>kvm</VM_MAD>
    <PM_MAD>provisiond</PM_MAD>
    <PROVISION>
${keys}
    </PROVISION>
    <PROVISION_CONNECTION>
      <REMOTE_USER>root</REMOTE_USER>
      <REMOTE_PORT>22</REMOTE_PORT>
    </PROVISION_CONNECTION>
    <CONTEXT>
      <SSH_PUBLIC_KEY>ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBtest oneadmin@front-end</SSH_PUBLIC_KEY>
    </CONTEXT>
  </TEMPLATE>
</HOST>
`;
}

/** Writes the driver's settings file (the INI file an admin puts at /etc/one/provisiond.conf). */
export function writeDriverConfig(path: string, settings: Record<string, string | number>): string {
  writeFileSync(path, `[provisiond]\n${Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`, { mode: 0o600 });
  return path;
}
