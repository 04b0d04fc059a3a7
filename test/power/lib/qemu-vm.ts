/**
 * A real QEMU VM for the qemu driver's tests: TCG, no disk, started paused (-S: powered off), a QMP
 * unix socket and a serial chardev unix socket. SeaBIOS prints on the serial line (-nographic turns
 * its serial console on), and with `-boot menu=on` it waits for ESC, which makes a keystroke round trip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

export function haveQemu(): boolean {
  return spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status === 0;
}

export interface TestVm {
  qmp: string;
  serial: string;
  /** The run state QEMU reports, asked over a QMP connection of the test's own. */
  runState(): Promise<{ running: boolean; status: string }>;
  stop(): Promise<void>;
}

export async function startVm(dir: string, name = 'vm'): Promise<TestVm> {
  const qmp = join(dir, `${name}.qmp`);
  const serial = join(dir, `${name}.serial`);
  const child: ChildProcess = spawn(
    'qemu-system-x86_64',
    ['-accel', 'tcg', '-nographic', '-nodefaults', '-m', '64', '-S', '-name', name, '-no-shutdown', '-boot', 'menu=on,splash-time=20000',
      '-qmp', `unix:${qmp},server=on,wait=off`, '-chardev', `socket,id=ser0,path=${serial},server=on,wait=off`, '-serial', 'chardev:ser0'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d.toString()));
  const end = Date.now() + 10000;
  while (!(existsSync(qmp) && existsSync(serial))) {
    if (Date.now() > end || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`qemu did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    qmp,
    serial,
    runState: () => rawQueryStatus(qmp),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 3000).unref();
      }),
  };
}

/** query-status over a plain socket, independent of the driver's QMP client. */
function rawQueryStatus(path: string): Promise<{ running: boolean; status: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ path });
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      for (const line of buf.split('\n')) {
        if (line.includes('"QMP"')) {
          s.write('{"execute":"qmp_capabilities"}\n{"execute":"query-status","id":"q"}\n');
          buf = buf.slice(buf.indexOf(line) + line.length);
        }
        if (line.includes('"id": "q"') || line.includes('"id":"q"')) {
          s.destroy();
          return resolve(JSON.parse(line).return);
        }
      }
    });
    s.on('error', reject);
  });
}
