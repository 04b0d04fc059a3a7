/**
 * Node identity attacked from the provisioning network itself (issue 23): a real QEMU node boots
 * with every protection at its default (provisiond's DHCP, so source binding is on), fetches its own
 * protected file (nodefiles/NODE/secret) with its credential, and keeps checking in. An attacker in
 * a second network namespace, plugged into the same bridge with an address of the subnet, then
 * asks for the node's init and iPXE scripts, posts check-ins and events for it without a
 * credential, with a wrong one and with its own (it is a registered node too, so it has a real
 * credential of its own), and asks for the node's protected file: every request is refused, each
 * refusal is in the victim's timeline, and the real node's check-ins go on all along.
 * (An earlier boot's credential, and the flood, are attacked in test/daemon/identity*.test.ts.)
 */
import t from 'tap';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../lib/cleanup.js';
import { gate } from '../lib/gate.js';
import { sleep } from '../lib/sleep.js';
import { e2eWhyNot } from './lib/prereqs.js';
import { TestNetwork } from './lib/netns.js';
import { Vm } from './lib/vm.js';
import { Cluster } from './lib/cluster.js';

const READY_INTERVAL = 5;
const BOOT_TIMEOUT = 300_000;
const ATTACKER_MAC = '52:54:00:99:23:66';
const ATTACKER_ADDR = '10.99.0.50';

if (gate(t, e2eWhyNot())) {
  const dir = tempDir('pvd-e2e-identity-');
  const net = await TestNetwork.create({ dir });
  const cluster = new Cluster({ net, statedir: join(dir, 'state'), readyInterval: READY_INTERVAL, log: (m) => t.comment(m) });
  const vm = new Vm({ name: 'id1', firmware: 'bios', mac: '52:54:00:99:23:01', net, dir });
  t.teardown(async () => {
    await vm.stop();
    await cluster.stop();
    await net.destroy();
    if (!process.env.PVD_E2E_KEEP) rmSync(dir, { recursive: true, force: true });
  });

  await cluster.prepare();
  await cluster.vmGroups(['cluster']);
  await cluster.cli(['node', 'add', vm.mac, 'id1', '--group', 'cluster', '--vnfs', 'demo']);
  // The attacker is a node of the cluster too (a compromised or rogue machine), with a fixed address.
  await cluster.cli(['node', 'add', ATTACKER_MAC, 'rogue1', '--group', 'cluster', '--vnfs', 'demo']);
  await cluster.cli(['node', 'set', 'ipaddr', ATTACKER_ADDR, 'rogue1']);
  // The node's own secret, and a nodescript that has it fetched (with the credential) into its root.
  const { writeFileSync, mkdirSync, chmodSync } = await import('node:fs');
  mkdirSync(join(cluster.statedir, 'nodefiles/id1'), { recursive: true });
  writeFileSync(join(cluster.statedir, 'nodefiles/id1/secret'), 'the munge key of id1\n');
  const script = join(cluster.statedir, 'nodescripts/init/all/55-secret');
  writeFileSync(script, '#!/bin/sh\necho "getfile nodefiles/$NODENAME/secret /newroot/etc/node-secret || report failed \\"getfile secret\\""\n');
  chmodSync(script, 0o755);
  await cluster.start();
  await vm.start();
  await cluster.waitForNode(vm.mac, (n) => n.state === 'ready', BOOT_TIMEOUT, 'ready');

  // The attacker's namespace, on the bridge.
  const attacker = net.lab.ns('attacker');
  net.lab.link({ ns: attacker, dev: 'eth0', addr: `${ATTACKER_ADDR}/24`, mac: ATTACKER_MAC }, { ns: net.name, dev: 'atk0', master: net.bridge });
  const base = `http://${net.master}:8080`;
  /** curl from the attacker's namespace: status and body. */
  const curl = async (path: string, credential?: string) => {
    const args = ['-s', '-m', '20', '-w', '\n%{http_code}'];
    if (credential) args.push('-H', `Authorization: Bearer ${credential}`);
    const out = await net.lab.run(attacker, 'curl', [...args, base + path]);
    const nl = out.lastIndexOf('\n');
    return { status: Number(out.slice(nl + 1)), body: out.slice(0, nl) };
  };

  t.test('attacks from a second namespace on the bridge: all refused, all in the victim timeline', async (t) => {
    const began = Date.now();
    const init = await curl(`/nodescripts/init?nodeid=${vm.mac}`);
    t.equal(init.status, 403, "the node's init script from another address: 403 (source binding on by default)");
    t.notMatch(init.body, /PROVISIOND_CREDENTIAL/, 'no credential handed out');
    t.equal((await curl(`/boot/${vm.mac}.ipxe`)).status, 403, "the node's iPXE script from another address: 403");

    // The attacker's own credential: it is a node, from its own address.
    const own = await curl(`/nodescripts/init?nodeid=${ATTACKER_MAC}`);
    t.equal(own.status, 200, 'the attacker gets its own init script');
    const mine = /^PROVISIOND_CREDENTIAL=([0-9a-f]{64});/m.exec(own.body)?.[1];
    t.ok(mine, 'with its own credential');

    const cases: Array<[string, string | undefined, number]> = [
      ['without a credential', undefined, 401],
      ['with a wrong one', 'f'.repeat(64), 403],
      ["with another node's (the attacker's own)", mine, 403],
    ];
    for (const [what, credential, status] of cases) {
      t.equal((await curl(`/nodescripts/ready?nodeid=${vm.mac}`, credential)).status, 403, `a check-in as the node ${what}: 403 (and from the wrong address)`);
      t.equal((await curl(`/nodes/${vm.mac}/events?stage=ready&msg=fake`, credential)).status, status, `an event for the node ${what}: ${status}`);
    }
    t.equal((await curl('/files/nodefiles/id1/secret')).status, 401, "the node's protected file without a credential: 401");
    const stolen = await curl('/files/nodefiles/id1/secret', mine);
    t.equal(stolen.status, 403, "the node's protected file with another node's credential: 403");
    t.notMatch(stolen.body, /munge key/, 'not a byte of it');

    // The victim's timeline: each attempt, from the attacker's address.
    await sleep(1000);
    const events = await cluster.timelineEvents('id1');
    const refused = events.filter((e) => e.stage === 'refused' && Number(new Date(e.time)) >= began - 1000).map((e) => e.msg ?? '');
    t.comment(refused.join('\n'));
    t.ok(refused.some((m) => m.startsWith(`nodescript init from ${ATTACKER_ADDR}`)), 'the init attempt is in the timeline');
    t.ok(refused.some((m) => m.startsWith(`ipxe script from ${ATTACKER_ADDR}`)), 'the iPXE attempt is in the timeline');
    t.ok(refused.filter((m) => m.startsWith(`nodescript ready from ${ATTACKER_ADDR}`)).length >= 3, 'each check-in attempt is in the timeline');
    t.ok(refused.filter((m) => m.startsWith(`event "ready" from ${ATTACKER_ADDR}`)).length >= 3, 'each event attempt is in the timeline');
    t.ok(refused.some((m) => /nodefiles\/id1\/secret/.test(m) && m.includes(ATTACKER_ADDR)), 'the attempt on the protected file is in the timeline');
    t.notOk(events.some((e) => e.source === 'node' && e.msg === 'fake'), 'no fake event recorded');

    // The real node, meanwhile and after: it had its secret, and its check-ins go on.
    const fetched = events.filter((e) => e.source === 'http' && e.ok && /secret/.test(`${e.stage} ${e.msg}`));
    t.comment(fetched.map((e) => `${e.stage}: ${e.msg}`).join('\n'));
    t.ok(fetched.length > 0, 'the real node fetched its protected file at boot');
    const after = Date.now();
    const deadline = after + 60_000;
    let checkedIn = false;
    while (!checkedIn && Date.now() < deadline) {
      await sleep(2000);
      checkedIn = (await cluster.timelineEvents('id1')).some((e) => e.source === 'node' && e.stage === 'ready' && Number(new Date(e.time)) > after);
    }
    t.ok(checkedIn, 'the real node checks in after the attacks');
  });
}
