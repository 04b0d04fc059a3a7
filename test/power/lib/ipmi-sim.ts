/**
 * A real BMC for the tests: OpenIPMI's `ipmi_sim` speaking IPMI 2.0 lanplus on a loopback UDP port,
 * with its chassis control handled by a small script (power and boot device kept in files the test
 * reads) and its SOL connected to a TCP "serial port" the test serves.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';

export const IPMI_USER = 'admin';
export const IPMI_PASSWORD = 'Bmc-s3cret';

export function haveIpmiSim(): boolean {
  return spawnSync('sh', ['-c', 'command -v ipmi_sim && command -v ipmitool']).status === 0;
}

export interface IpmiSim {
  address: string;
  /** The chassis power as the simulated machine has it. */
  power(): 'on' | 'off';
  /** The boot device the BMC handed to the chassis (`pxe`, `default`...), from the chassis script's log. */
  bootLog(): string;
  stop(): Promise<void>;
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A free TCP port on loopback (for a listener another program opens right after). */
export async function freeTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * Starts ipmi_sim in `dir`; `solPort` is the TCP port of the serial line SOL connects to. With `vm`,
 * the chassis is a real QEMU VM instead of the script: power on runs `vm.startcmd`, which connects
 * back to the simulator through `-device ipmi-bmc-extern` on `vm.bmcPort`; power off asks it to shut
 * down, then kills it.
 */
export async function startIpmiSim(dir: string, solPort: number, vm?: { bmcPort: number; startcmd: string }): Promise<IpmiSim> {
  mkdirSync(join(dir, 'state'), { recursive: true });
  const chassis = join(dir, 'chassis.sh');
  writeFileSync(
    chassis,
    `#!/bin/sh
# ipmi_sim chassis_control: "<prog> get power boot" or "<prog> set power 1"
d=${JSON.stringify(dir)}
echo "$*" >> "$d/chassis.log"
op=$1; shift
if [ "$op" = get ]; then
  for k in "$@"; do v=$(cat "$d/chassis.$k" 2>/dev/null || echo 0); echo "$k:$v"; done
elif [ "$op" = set ]; then
  while [ $# -ge 2 ]; do echo "$2" > "$d/chassis.$1"; shift 2; done
fi
`,
  );
  chmodSync(chassis, 0o755);
  const port = await freeUdpPort();
  writeFileSync(
    join(dir, 'lan.conf'),
    `name "pvdpower"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 ${port}
    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid a123456789abcdefa123456789abcdef
  endlan
  sol "tcp:127.0.0.1:${solPort}" 115200
${vm ? `  serial 15 127.0.0.1 ${vm.bmcPort} codec VM
  startcmd "${vm.startcmd}"
  startnow false
  poweroff_wait 3
  kill_wait 2` : `  chassis_control "${chassis}"`}
  user 2 true "${IPMI_USER}" "${IPMI_PASSWORD}" admin 10 md5
`,
  );
  writeFileSync(join(dir, 'sim.emu'), 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nsel_enable 0x20 1000 0x0a\nmc_enable 0x20\n');
  const child: ChildProcess = spawn('ipmi_sim', ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'sim.emu'), '-s', join(dir, 'state'), '-n'], {
    cwd: dir,
    // stdin must be pollable (a pipe): ipmi_sim asserts when epoll refuses /dev/null.
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  const address = `127.0.0.1:${port}`;
  // Ready when it answers (short ipmitool timeouts: the first try may come before the bind).
  await new Promise((res) => setTimeout(res, 200));
  const end = Date.now() + 10000;
  for (;;) {
    const r = spawnSync('ipmitool', ['-I', 'lanplus', '-N', '1', '-R', '1', '-H', '127.0.0.1', '-p', String(port), '-U', IPMI_USER, '-E', 'mc', 'info'], {
      env: { ...process.env, IPMI_PASSWORD },
      timeout: 5000,
    });
    if (r.status === 0) break;
    if (Date.now() > end || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`ipmi_sim did not come up: ${r.stderr?.toString()}`);
    }
    await new Promise((res) => setTimeout(res, 200));
  }
  return {
    address,
    power: () => (existsSync(join(dir, 'chassis.power')) && readFileSync(join(dir, 'chassis.power'), 'utf8').trim() === '1' ? 'on' : 'off'),
    bootLog: () => (existsSync(join(dir, 'chassis.log')) ? readFileSync(join(dir, 'chassis.log'), 'utf8') : ''),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 2000).unref();
      }),
  };
}

/**
 * A BMC with a node's serial line behind its SOL: a TCP server on loopback whose connections (one per
 * SOL session) `onLine` serves, and ipmi_sim in `dir` connected to it. At `t`'s teardown the
 * simulator stops, the line closes and `dir` is removed (also when the simulator fails to start).
 */
export async function startIpmiSimWithLine(t: { teardown(fn: () => unknown): void }, dir: string, onLine: (s: Socket) => void): Promise<IpmiSim> {
  const peers = new Set<Socket>();
  const line = createServer((s) => {
    peers.add(s);
    s.on('error', () => {});
    s.on('close', () => peers.delete(s));
    onLine(s);
  });
  await new Promise<void>((r) => line.listen(0, '127.0.0.1', () => r()));
  let sim: IpmiSim;
  try {
    sim = await startIpmiSim(dir, (line.address() as { port: number }).port);
  } catch (err) {
    line.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  t.teardown(async () => {
    await sim.stop();
    for (const s of peers) s.destroy();
    line.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return sim;
}
