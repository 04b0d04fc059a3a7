/**
 * The harness alone, before provisiond is involved: VMs on the test network power on, their firmware
 * brings up the virtio NIC and broadcasts DHCP DISCOVERs that a plain listener on the bridge sees,
 * with the client architecture (option 93) each firmware is known to send. When this fails, the
 * machine (QEMU, OVMF, iPXE ROM, namespace) is at fault, not provisiond.
 */
import t from 'tap';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { tempDir } from '../lib/cleanup.js';
import { gate } from '../lib/gate.js';
import { sleep } from '../lib/sleep.js';
import { e2eWhyNot } from './lib/prereqs.js';
import { TestNetwork } from './lib/netns.js';
import { Vm, type Firmware } from './lib/vm.js';

interface Seen {
  time: number;
  mac: string;
  type: number | null;
  arch: number | null;
  vendorClass: string | null;
  userClass: string | null;
}

if (gate(t, e2eWhyNot())) {
  t.test('VM firmware sends DHCP DISCOVERs on the test bridge', async (t) => {
    const dir = tempDir('pvd-e2e-fw-');
    const net = await TestNetwork.create({ dir });
    const vms: Vm[] = [];
    t.teardown(async () => {
      for (const vm of vms) await vm.stop();
      await net.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    const seen: Seen[] = [];
    const sniffer = net.spawn(process.execPath, [join(import.meta.dirname, 'lib/dhcp-sniffer.mjs')]);
    const listening = new Promise<void>((resolve, reject) => {
      sniffer.once('exit', (code) => reject(new Error(`dhcp listener exited ${code}`)));
      createInterface({ input: sniffer.stdout! }).on('line', (line) => {
        const msg = JSON.parse(line) as Seen & { listening?: boolean };
        if (msg.listening) resolve();
        else seen.push(msg);
      });
    });
    await listening;

    const cases: Array<{ firmware: Firmware; mac: string; arch: number; vendor: RegExp }> = [
      { firmware: 'bios', mac: '52:54:00:99:f0:01', arch: 0, vendor: /^PXEClient:Arch:00000/ },
      { firmware: 'uefi-pxe', mac: '52:54:00:99:f0:02', arch: 7, vendor: /^PXEClient:Arch:00007/ },
    ];
    for (const c of cases) {
      const vm = new Vm({ name: c.firmware, mac: c.mac, firmware: c.firmware, net, dir });
      vms.push(vm);
      await vm.start();
    }
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !cases.every((c) => seen.some((s) => s.mac === c.mac && s.type === 1))) {
      await sleep(250);
    }
    for (const c of cases) {
      const vm = vms.find((v) => v.mac === c.mac)!;
      const discover = seen.find((s) => s.mac === c.mac && s.type === 1);
      t.ok(discover, `${c.firmware}: a DHCP DISCOVER from ${c.mac} reached the bridge`, { serial: vm.serial.slice(-2000) });
      if (!discover) continue;
      t.equal(discover.arch, c.arch, `${c.firmware}: client architecture (option 93) is ${c.arch}`);
      t.match(discover.vendorClass, c.vendor, `${c.firmware}: vendor class says PXEClient`);
      t.comment(`${c.firmware}: first DISCOVER ${((discover.time - vm.poweredOnAt) / 1000).toFixed(1)} s after power-on`);
    }
  });
}
