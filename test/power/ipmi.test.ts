/**
 * The ipmi driver against a real BMC simulator (OpenIPMI's ipmi_sim) through the real ipmitool:
 * power, boot device, and a Serial-over-LAN text round trip to a serial line this test serves; then
 * ipmi_sim managing a real QEMU VM, so power and SOL act on a real virtual node.
 */
import t from 'tap';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IpmiDriver } from '../../src/power/ipmi/driver.js';
import { powerSettings } from '../../src/power/settings.js';
import { freeTcpPort, haveIpmiSim, IPMI_PASSWORD, IPMI_USER, startIpmiSim, startIpmiSimWithLine } from './lib/ipmi-sim.js';
import { powerContract } from './contract.js';
import { gate, skipUnlessCi } from '../lib/gate.js';
import { haveQemu } from './lib/qemu-vm.js';

if (gate(t, haveIpmiSim() ? null : 'ipmi_sim or ipmitool not installed (Debian packages openipmi, ipmitool)')) {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-power-ipmi-'));
  // The node's serial line: SOL reaches it through ipmi_sim.
  let fromConsole = '';
  // A getty-like peer: answers Enter with a login prompt, and a typed name with a welcome. (What the
  // line prints while no SOL session is active is dropped by the BMC, as on real hardware.)
  const sim = await startIpmiSimWithLine(t, dir, (s) => {
    s.on('data', (d) => {
      fromConsole += d.toString();
      const m = /(\w+)\r$/.exec(fromConsole);
      if (m) s.write(`\r\nWelcome ${m[1]} to n0001\r\n`);
      else if (d.toString() === '\r') s.write('\r\nprovisiond test node login: ');
    });
  });

  const make = (extra: Record<string, string> = {}) =>
    new IpmiDriver({
      name: 'n0001',
      nodeid: '52:54:00:00:00:01',
      // Cipher suite 1 (authenticated, unencrypted): ipmi_sim's SOL does not do encrypted payloads,
      // and naming the suite spares ipmitool a cipher-suite query the simulator does not answer.
      settings: powerSettings('n0001', { 'power.driver': 'ipmi', 'power.address': sim.address, 'power.user': IPMI_USER, 'power.password': IPMI_PASSWORD, 'power.args': '-C 1', ...extra }, dir),
    });

  powerContract(t, 'ipmi', async () => ({
    driver: make(),
    peer: {
      secret: IPMI_PASSWORD,
      power: async () => sim.power(),
      bootdev: async () => {
        const sets = sim.bootLog().split('\n').filter((l) => l.startsWith('set boot'));
        return sets.at(-1)?.replace('set boot ', '').replace('default', 'disk') ?? '';
      },
    },
  }));

  t.test('ipmi: the password goes by environment, never on the command line or in describe()', async (t) => {
    const d = make();
    t.match(d.describe('on'), /^IPMI_PASSWORD=\*\*\*\* ipmitool -I lanplus -H 127\.0\.0\.1 -p \d+ -U admin -E -C 1 chassis power on$/);
    t.match(d.describe('bootdev', 'pxe persistent'), /chassis bootdev pxe options=persistent$/);
  });

  t.test('ipmi: a wrong password is a clear failure without the password in it', async (t) => {
    const d = make({ 'power.password': 'wrong-Pa55' });
    const err = await d.status({ signal: AbortSignal.timeout(20000) }).then(() => null, (e: Error) => e);
    t.ok(err, 'refused');
    t.match(err!.message, /^ipmitool chassis power status \(127\.0\.0\.1:\d+\): /);
    t.notOk(err!.message.includes('wrong-Pa55'));
  });

  t.test('ipmi: interrogate reads the BMC', async (t) => {
    const info = await make().interrogate();
    t.equal(info['mc.ipmi_version'], '2.0');
    t.equal(info['chassis.system_power'], 'off');
  });

  t.test('ipmi: SOL carries text both ways through ipmitool in a pty', async (t) => {
    await make().power('on');
    const session = await make().console();
    let seen = '';
    session.stream.on('data', (b: Buffer) => (seen += b.toString()));
    await until(() => seen.includes('SOL Session operational'), 15000).catch(() => {});
    // Press Enter until the node's prompt shows (the session may take a moment to carry data).
    for (let i = 0; i < 20 && !seen.includes('login:'); i++) {
      session.stream.write('\r');
      await until(() => seen.includes('login:'), 500).catch(() => {});
    }
    t.match(seen, /provisiond test node login:/, 'what the node prints reaches the console');
    session.stream.write('root\r');
    await until(() => seen.includes('Welcome root'), 10000).catch(() => {});
    t.match(fromConsole, /root\r/, 'keystrokes reach the node');
    t.match(seen, /Welcome root to n0001/, "and the node's answer comes back");
    await session.close();
  });

  const noQemu = haveQemu() ? null : 'qemu-system-x86_64 not installed';
  t.test('ipmi: ipmi_sim driving a real QEMU VM (ipmi-bmc-extern): power on boots it, SOL shows its firmware, power off ends it', { skip: skipUnlessCi(noQemu) }, async (t) => {
    const vmDir = join(dir, 'vm');
    const [bmcPort, vmSolPort] = [await freeTcpPort(), await freeTcpPort()];
    const startcmd = ['qemu-system-x86_64', '-accel', 'tcg', '-nographic', '-nodefaults', '-m', '64', '-boot', 'menu=on,splash-time=30000',
      '-chardev', `socket,id=ipmi0,host=127.0.0.1,port=${bmcPort},reconnect=2`, '-device', 'ipmi-bmc-extern,chardev=ipmi0,id=bmc0', '-device', 'isa-ipmi-kcs,bmc=bmc0',
      '-chardev', `socket,id=ser0,host=127.0.0.1,port=${vmSolPort},server=on,wait=off`, '-serial', 'chardev:ser0'].join(' ');
    mkdirSync(vmDir);
    const vmSim = await startIpmiSim(vmDir, vmSolPort, { bmcPort, startcmd });
    const d = new IpmiDriver({ name: 'vm1', nodeid: '52:54:00:00:00:02', settings: powerSettings('vm1', { 'power.driver': 'ipmi', 'power.address': vmSim.address, 'power.user': IPMI_USER, 'power.password': IPMI_PASSWORD, 'power.args': '-C 1' }, dir) });
    t.teardown(async () => {
      await d.power('off').catch(() => {});
      await vmSim.stop();
    });
    t.equal(await d.status(), 'off');
    await d.power('on');
    t.equal(await d.status(), 'on', 'the BMC started the VM');
    const session = await d.console();
    let seen = '';
    session.stream.on('data', (b: Buffer) => (seen += b.toString()));
    // SeaBIOS waits in its boot menu prompt; ESC over SOL opens the menu.
    for (let i = 0; i < 60 && !seen.includes('Select boot device'); i++) {
      session.stream.write('\x1b');
      await until(() => seen.includes('Select boot device'), 1000).catch(() => {});
    }
    t.match(seen, /Select boot device/, "the VM's firmware answers ESC typed over SOL");
    await session.close();
    await d.power('off');
    let state = await d.status();
    for (let i = 0; i < 50 && state !== 'off'; i++) {
      await new Promise((r) => setTimeout(r, 200));
      state = await d.status();
    }
    t.equal(state, 'off', 'power off ended the VM');
  });
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
