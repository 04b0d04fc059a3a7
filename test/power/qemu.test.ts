/**
 * The qemu driver against a real QEMU VM (TCG): power through QMP, and `provisiond console` run in a
 * real pseudo-terminal (node-pty) attached to the VM's serial: the firmware's output shows, ESC
 * typed on the terminal opens SeaBIOS's boot menu, `~.` detaches, and the session is in the log.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pty from 'node-pty';
import { QemuDriver } from '../../src/power/qemu/driver.js';
import { powerSettings } from '../../src/power/settings.js';
import { haveQemu, startVm, type TestVm } from './lib/qemu-vm.js';
import { powerContract } from './contract.js';
import { gate } from '../lib/gate.js';

const ROOT = resolve(import.meta.dirname, '../..');

if (gate(t, haveQemu() ? null : 'qemu-system-x86_64 not installed (Debian package qemu-system-x86)')) {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-power-qemu-'));
  const vms: TestVm[] = [];
  t.teardown(async () => {
    await Promise.all(vms.map((v) => v.stop()));
    rmSync(dir, { recursive: true, force: true });
  });
  const vmDriver = async (name: string) => {
    const vm = await startVm(dir, name);
    vms.push(vm);
    const driver = new QemuDriver({ name, nodeid: '52:54:00:00:00:01', settings: powerSettings(name, { 'power.driver': 'qemu', 'power.address': vm.qmp, 'power.console': vm.serial }, dir) });
    return { vm, driver };
  };

  powerContract(t, 'qemu', async () => {
    const { vm, driver } = await vmDriver('contract');
    return { driver, peer: { secret: null, power: async () => ((await vm.runState()).running ? 'on' : 'off') } };
  });

  t.test('qemu: a VM started paused is off; a gone QEMU is off; describe names the QMP commands', async (t) => {
    const { vm, driver } = await vmDriver('gone');
    t.equal(await driver.status(), 'off');
    t.equal((await vm.runState()).status, 'prelaunch');
    await vm.stop();
    t.equal(await driver.status(), 'off', 'no QMP socket: the VM process is gone');
    await t.rejects(driver.power('on'), /qmp .*gone\.qmp: (ENOENT|ECONNREFUSED)/);
    t.match(driver.describe('cycle'), /^qmp .*: stop; system_reset; cont$/);
  });

  t.test('qemu: provisiond console in a terminal shows the firmware, sends keys, detaches with ~.', async (t) => {
    const { driver } = await vmDriver('n0007');
    const state = join(dir, 'statedir');
    mkdirSync(join(state, 'etc'), { recursive: true });
    const cfg = join(state, 'etc', 'provisiond.yaml');
    writeFileSync(cfg, `statedir: ${state}\n`);
    const cli = (...args: string[]) => {
      const r = spawnSync(process.execPath, [join(ROOT, 'bin/provisiond.js'), '-c', cfg, ...args], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`provisiond ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    cli('node', 'add', '52:54:00:00:00:07', 'n0007');
    cli('node', 'set', 'power.driver', 'qemu', 'n0007');
    cli('node', 'set', 'power.address', join(dir, 'n0007.qmp'), 'n0007');
    cli('node', 'set', 'power.console', join(dir, 'n0007.serial'), 'n0007');

    const term = pty.spawn(process.execPath, [join(ROOT, 'bin/provisiond.js'), '-c', cfg, 'console', 'n0007'], { name: 'xterm', cols: 100, rows: 30, cwd: ROOT, env: process.env as Record<string, string> });
    let screen = '';
    term.onData((d) => (screen += d));
    const exited = new Promise<number>((r) => term.onExit(({ exitCode }) => r(exitCode)));
    t.teardown(() => term.kill());
    await until(() => screen.includes('~. to detach'), 15000);
    await driver.power('on');
    await until(() => screen.includes('Press ESC for boot menu'), 30000);
    t.match(screen, /SeaBIOS/, "the VM's firmware output shows on the terminal");
    term.write('\x1b');
    await until(() => screen.includes('Select boot device'), 20000);
    t.pass('ESC typed on the terminal reached the VM: its boot menu opened');
    term.write('\r~.');
    t.equal(await exited, 0, '~. detaches and the command exits 0');
    t.match(screen, /detached from n0007/);
    const log = readFileSync(join(state, 'var', 'log', 'console', 'n0007.log'), 'utf8');
    t.match(log, /console opened by .* via qemu serial/);
    t.match(log, /SeaBIOS/, 'the console log has what the node printed');
    t.match(log, /Select boot device/);
    t.match(log, /console closed/);
  });
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
