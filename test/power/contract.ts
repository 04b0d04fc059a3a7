/**
 * The contract every power driver keeps, run by each driver's test against its real peer (or, for
 * redfish, the test's DMTF-shaped service). `peer` reports what the far side saw, so the suite checks
 * the machine, not only the driver's own answer.
 */
import type { Test } from 'tap';
import { UnsupportedVerbError, type PowerDriver, type PowerState } from '../../src/power/types.js';

export interface ContractPeer {
  /** The power state as the far side knows it (the simulated chassis, the VM, the service). */
  power(): Promise<PowerState>;
  /** The boot device the far side will use next, or null when the driver cannot set it. */
  bootdev?(): Promise<string>;
  /** The secret that must never show in describe() or errors. */
  secret: string | null;
  /** Waits for a state the far side reaches asynchronously (a QEMU reset). Default: immediately. */
  settle?(): Promise<void>;
}

/** Polls `read` until it returns `want` (a BMC may act a moment after it answered), up to 10 s. */
async function eventually<T>(read: () => Promise<T>, want: T): Promise<T> {
  const end = Date.now() + 10000;
  for (;;) {
    const v = await read();
    if (v === want || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function powerContract(t: Test, name: string, make: () => Promise<{ driver: PowerDriver; peer: ContractPeer }>): void {
  t.test(`${name}: power contract`, async (t) => {
    const { driver, peer } = await make();
    const settle = peer.settle ?? (async () => {});

    await driver.power('on');
    await settle();
    t.equal(await driver.status(), 'on', 'on: the driver reports on');
    t.equal(await eventually(peer.power, 'on'), 'on', 'on: the machine is on');

    await driver.power('off');
    await settle();
    t.equal(await driver.status(), 'off', 'off: the driver reports off');
    t.equal(await eventually(peer.power, 'off'), 'off', 'off: the machine is off');

    await driver.power('on');
    await driver.power('cycle');
    await settle();
    t.equal(await eventually(peer.power, 'on'), 'on', 'cycle leaves the machine on');

    await driver.power('reset');
    await settle();
    t.equal(await eventually(() => driver.status(), 'on'), 'on', 'reset leaves the machine on');

    if (peer.bootdev) {
      await driver.bootdev('pxe', false);
      t.match(await peer.bootdev(), /pxe/i, 'bootdev pxe reaches the machine');
      await driver.bootdev('disk', true);
      t.match(await peer.bootdev(), /disk|hdd/i, 'bootdev disk --persistent reaches the machine');
    } else {
      await t.rejects(driver.bootdev('pxe', false), UnsupportedVerbError, 'a driver that cannot set the boot device says so');
      await t.rejects(driver.bootdev('pxe', false), { message: new RegExp(`^${driver.name} driver cannot bootdev`) });
    }

    const info = await driver.interrogate();
    t.ok(Object.keys(info).length > 0, `interrogate tells something (${Object.keys(info).slice(0, 3).join(', ')})`);

    for (const verb of ['on', 'off', 'shutdown', 'reset', 'cycle', 'status', 'bootdev', 'interrogate', 'console'] as const) {
      const line = driver.describe(verb, verb === 'bootdev' ? 'pxe' : undefined);
      t.ok(line.length > 0, `describe ${verb}`);
      if (peer.secret) t.notOk(line.includes(peer.secret), `describe ${verb} does not show the password`);
    }
    await driver.power('off');
  });
}
