/**
 * The OpenNebula provision driver (adapters/opennebula/pm/provisiond) under real python3, run the way
 * oneprovision runs it (test/adapters/lib/oneprovision.ts stands in for OpenNebula, which is not
 * installable here), against a real provisiond. The nodes are the exec power driver's scripts (a
 * state file per node) and this test plays each node's boot when it is powered on: the requests
 * its stage-1 and its ready agent make (init script, address, image fetch, ready check-in). A real
 * QEMU node goes through the same actions in test/e2e/opennebula.test.ts.
 *
 * Checked: deploy with the deployment XML on stdin (written to the named file) prints only the
 * node's name; a retried deploy gets the same node; poll as oneprovision parses it; reboot (ACPI
 * shutdown, then a reload), reset, cancel (released, powered off; again: nothing to do); shutdown's
 * LCM_STATE variants; someone else's node refused; and the error format for an unknown group, no
 * free node, a bad token, a deployment file without GROUP and a settings file with an unknown key.
 */
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startApiDaemon } from '../api/lib/harness.js';
import { bearer, initCredential, text } from '../lib/daemon.js';
import { gate, missingCommands } from '../lib/gate.js';
import { sleep } from '../lib/sleep.js';
import { deploymentXml, parsePoll, runDriver, writeDriverConfig } from './lib/oneprovision.js';

const mac = (i: number) => `52:54:00:0e:00:${i.toString(16).padStart(2, '0')}`;

/** The exec power driver's scripts: each logs its verb; `on` also asks the test to boot the node. */
const POWER_SCRIPTS: Record<string, string> = {
  // A node with power.noboot set never boots (a broken NIC, a hung firmware).
  on: 'echo on > "$POWER_STATEFILE"; echo on >> "$POWER_STATEFILE.log"; [ -n "$POWER_NOBOOT" ] || echo "$NODEID" >> "$POWER_BOOTLOG"',
  off: 'echo off > "$POWER_STATEFILE"; echo off >> "$POWER_STATEFILE.log"',
  // ACPI: the node's OS powers it off, unless it ignores the button (power.acpi=ignore).
  shutdown: 'echo shutdown >> "$POWER_STATEFILE.log"; [ "$POWER_ACPI" = ignore ] || echo off > "$POWER_STATEFILE"',
  status: 'cat "$POWER_STATEFILE" 2>/dev/null || echo off',
};

if (gate(t, missingCommands(['python3']).length ? 'the OpenNebula driver tests need python3 (apt-get install python3)' : null)) {
  // The test plays the nodes from loopback: their leases' addresses are not where it asks from.
  const h = await startApiDaemon(t, 'security:\n  verifySource: "off"\n', { setup: (dir) => mkdirSync(join(dir, 'vnfs/rocky9/rootfs'), { recursive: true }) });
  const reg = h.daemon.registry;
  for (const [verb, body] of Object.entries(POWER_SCRIPTS)) h.write(`power/${verb}`, `#!/bin/sh\n${body}\n`, 0o755);
  const bootlog = join(h.statedir, 'boots.log');
  writeFileSync(bootlog, '');
  await reg.updateGroup('pool', { attrs: { 'power.driver': 'exec', 'power.dir': join(h.statedir, 'power'), 'power.bootlog': bootlog } });
  for (const g of ['solo', 'flaky']) await reg.updateGroup(g, { attrs: { 'power.driver': 'exec', 'power.dir': join(h.statedir, 'power'), 'power.bootlog': bootlog } });
  const nodes = ['one01', 'one02', 'one03', 'one04', 'one05'];
  await reg.importNodes([
    ...nodes.map((name, i) => ({ name, nodeid: mac(i + 1), group: 'pool', vnfs: 'demo' })),
    { name: 'solo1', nodeid: mac(9), group: 'solo', vnfs: 'demo' },
    { name: 'flaky1', nodeid: mac(10), group: 'flaky', vnfs: 'demo', attrs: { 'power.noboot': 'yes' } },
  ]);
  for (const n of [...nodes, 'solo1', 'flaky1']) await reg.updateNode(n, { attrs: { 'power.statefile': join(h.statedir, `${n}.power`) } });
  // Their DHCP leases (poll's GUEST_IP_ADDRESSES).
  for (let i = 1; i <= nodes.length; i++) await reg.putLease({ hwaddr: mac(i), address: `10.9.0.${10 + i}`, expires: Date.now() + 86_400_000, state: 'bound' });
  const powerOf = (n: string) => (existsSync(join(h.statedir, `${n}.power`)) ? readFileSync(join(h.statedir, `${n}.power`), 'utf8').trim() : 'off');
  const verbsOf = (n: string) => (existsSync(join(h.statedir, `${n}.power.log`)) ? readFileSync(join(h.statedir, `${n}.power.log`), 'utf8').trim().split('\n') : []);

  // Each power-on boots the node: what its stage-1 and ready agent ask of the master.
  let booted = 0;
  let stopped = false;
  const bootNode = async (nodeid: string) => {
    const rec = (await reg.listNodes()).find((n) => n.nodeid.toLowerCase() === nodeid.toLowerCase());
    if (!rec) return;
    await sleep(300);
    const cred = await initCredential(h.base, nodeid);
    for (const path of [`/nodes/${nodeid}/events?stage=dhcp&msg=eth0%2010.9.0.99%2F24`, `/nodes/${nodeid}/events?stage=getfile&msg=vnfs%2F${rec.vnfs}%2Fimage.cpio.gz`, `/nodescripts/ready?nodeid=${nodeid}`]) {
      await sleep(150);
      await text(`${h.base}${path}`, bearer(cred));
    }
  };
  const booting = (async () => {
    while (!stopped) {
      const lines = readFileSync(bootlog, 'utf8').split('\n').filter(Boolean);
      for (const nodeid of lines.slice(booted)) void bootNode(nodeid).catch((err: Error) => t.comment(`boot of ${nodeid}: ${err.message}`));
      booted = lines.length;
      await sleep(100);
    }
  })();
  t.teardown(async () => {
    stopped = true;
    await booting;
  });

  const token = await h.token('opennebula', 'operator');
  const settings = { url: h.apiBase, token, poll_interval: 0.2, shutdown_grace: 2, deploy_timeout: 30, power_timeout: 20 };
  const config = writeDriverConfig(join(h.statedir, 'provisiond.conf'), settings);
  const run = (action: string, args: string[], stdin?: string) => runDriver(action, args, { config, stdin });
  const owners = async (owner: string) => ((await h.viewer.get(`/allocations?owner=${owner}`)).body as { items: Array<{ node: string }> }).items.map((a) => a.node);

  t.test('deploy (XML on stdin) -> poll -> deploy again -> reboot -> reset -> cancel', async (t) => {
    const file = join(h.statedir, 'deployment.7.xml');
    const xml = deploymentXml({ group: 'pool', image: 'rocky9', hostname: 'kvm07' });
    const deployed = await run('deploy', [file, 'TODO', '7', 'provision-7'], xml);
    t.equal(deployed.code, 0, `deploy succeeded (${deployed.error ?? deployed.stderr})`);
    const node = deployed.stdout.trim();
    t.match(deployed.stdout, /^one0\d\n$/, 'deploy printed the deploy id (the node name) and nothing else');
    t.equal(readFileSync(file, 'utf8'), xml, 'the XML that came on stdin was written to the named file');
    t.match((await h.viewer.get(`/allocations/${node}`)).body, { owner: 'one:7', hostname: 'kvm07', vnfs: 'rocky9' }, 'allocated to one:7 with its HOSTNAME, on IMAGE');
    t.equal(powerOf(node), 'on');

    const polled = await run('poll', [node, 'provision-7', '7', 'provision-7']);
    t.equal(polled.code, 0, polled.stderr);
    const { pairs, ips } = parsePoll(polled.stdout);
    const lease = ((await h.viewer.get(`/nodes/${node}`)).body as { leaseAddress: string }).leaseAddress;
    t.match(lease, /^10\.9\.0\.1\d$/);
    t.same(ips, [lease], `oneprovision renames the host to the node's lease address (${polled.stdout.trim()})`);
    t.match(pairs, { STATE: 'a', PROVISIOND_STATE: 'ready', VERDICT: 'READY', POWER: 'on', VNFS: 'rocky9', OWNER: 'one:7', HOSTNAME: 'kvm07' });

    // oneprovision retries a deploy that failed on its side: the resumed form, the file already there.
    const again = await run('deploy', [file, ips[0]!, '7', ips[0]!]);
    t.equal(again.code, 0, again.stderr);
    t.equal(again.stdout, `${node}\n`, 'a retried deploy answers the same node');
    t.same(await owners('one:7'), [node], 'and did not allocate a second one');

    const before = verbsOf(node).length;
    const rebooted = await run('reboot', [node, ips[0]!, '7', ips[0]!]);
    t.equal(rebooted.code, 0, rebooted.error ?? rebooted.stderr);
    t.same(verbsOf(node).slice(before), ['shutdown', 'on'], 'reboot: ACPI shutdown, then powered on (the OS had powered off)');
    const reset = await run('reset', [node, ips[0]!, '7', ips[0]!]);
    t.equal(reset.code, 0, reset.error ?? reset.stderr);
    t.same(verbsOf(node).slice(before + 2), ['off', 'on'], 'reset: a hard power cycle, no ACPI');
    t.match(parsePoll((await run('poll', [node, ips[0]!, '7', ips[0]!])).stdout).pairs, { STATE: 'a' }, 'ready again after both');

    const cancelled = await run('cancel', [node, ips[0]!, '7', ips[0]!]);
    t.equal(cancelled.code, 0, cancelled.stderr);
    t.equal(cancelled.stdout, '', 'cancel prints nothing');
    t.equal((await h.viewer.get(`/allocations/${node}`)).status, 404, 'the allocation is gone');
    t.equal(powerOf(node), 'off', 'the node is powered off');
    const twice = await run('cancel', [node, ips[0]!, '7', ips[0]!]);
    t.equal(twice.code, 0, 'a retried cancel has nothing to do and succeeds');
    const gone = await run('poll', [node, ips[0]!, '7', ips[0]!]);
    t.equal(gone.code, 1);
    t.match(gone.error, /^poll: node one0\d is not allocated/);
  });

  t.test("shutdown's LCM_STATE: SHUTDOWN_POWEROFF and UNDEPLOY keep the node, SHUTDOWN releases it", async (t) => {
    const deploy = async (id: string) => {
      const file = join(h.statedir, `deployment.${id}.xml`);
      writeFileSync(file, deploymentXml({ group: 'pool', image: 'rocky9' }));
      const r = await run('deploy', [file, 'TODO', id, `provision-${id}`]);
      t.equal(r.code, 0, `deploy of host ${id}: ${r.error ?? r.stderr}`);
      return r.stdout.trim();
    };
    const a = await deploy('21');
    const b = await deploy('22');
    const c = await deploy('23');

    const poweroff = await run('shutdown', [a, 'h21', 'SHUTDOWN_POWEROFF', '21', 'h21']);
    t.equal(poweroff.code, 0, poweroff.error ?? poweroff.stderr);
    t.equal(verbsOf(a).at(-1), 'shutdown', 'SHUTDOWN_POWEROFF: an ACPI shutdown, the OS powered off');
    t.equal(powerOf(a), 'off');
    t.same(await owners('one:21'), [a], 'the node stays allocated to the host');
    t.match(parsePoll((await run('poll', [a, 'h21', '21', 'h21'])).stdout).pairs, { STATE: 'd', POWER: 'off', VERDICT: 'RELOAD' }, 'poll says powered off');

    // This node's OS ignores the ACPI button: after shutdown_grace, a hard power-off.
    await reg.updateNode(b, { attrs: { 'power.acpi': 'ignore' } });
    const undeploy = await run('shutdown', [b, 'h22', 'UNDEPLOY', '22', 'h22']);
    t.equal(undeploy.code, 0, undeploy.error ?? undeploy.stderr);
    t.same(verbsOf(b).slice(-2), ['shutdown', 'off'], 'UNDEPLOY: ACPI ignored, hard off after the grace');
    t.equal(powerOf(b), 'off');
    t.same(await owners('one:22'), [b], 'the node stays allocated');

    const other = await run('shutdown', [c, 'h99', 'SHUTDOWN', '99', 'h99']);
    t.equal(other.code, 1, "another host's node is refused");
    t.match(other.error, new RegExp(`^shutdown: node ${c} is allocated to one:23, not to one:99`));
    t.equal(powerOf(c), 'on', 'and left running');
    const bad = await run('shutdown', [c, 'h23', 'POWEROFF', '23', 'h23']);
    t.equal(bad.code, 1);
    t.equal(bad.error, "shutdown: LCM_STATE 'POWEROFF': expected one of SHUTDOWN, SHUTDOWN_POWEROFF, UNDEPLOY");

    const destroyed = await run('shutdown', [c, 'h23', 'SHUTDOWN', '23', 'h23']);
    t.equal(destroyed.code, 0, destroyed.error ?? destroyed.stderr);
    t.equal(powerOf(c), 'off', 'SHUTDOWN: powered off');
    t.same(await owners('one:23'), [], 'and released');
    for (const [n, id] of [[a, '21'], [b, '22']] as const) t.equal((await run('cancel', [n, 'h', id, 'h'])).code, 0);
  });

  t.test('a deploy that times out gives the node back; the retry deploys it again', async (t) => {
    const file = join(h.statedir, 'deployment.51.xml');
    writeFileSync(file, deploymentXml({ group: 'flaky', image: 'rocky9' }));
    const impatient = writeDriverConfig(join(h.statedir, 'impatient.conf'), { ...settings, deploy_timeout: 3 });
    const failed = await runDriver('deploy', [file, 'TODO', '51', 'h51'], { config: impatient });
    t.equal(failed.code, 1);
    t.equal(failed.stdout, '');
    t.match(failed.error, /^deploy: deploy of rocky9 on flaky1: task \S+ complete failure: /, `the task's failure (${failed.error})`);
    t.same(await owners('one:51'), [], 'the node was given back');
    t.equal(powerOf('flaky1'), 'off', 'powered off');
    // Its NIC mended, oneprovision's retry (--fail-retry) deploys it.
    await reg.updateNode('flaky1', { attrs: { 'power.noboot': null } });
    const retried = await run('deploy', [file, 'TODO', '51', 'h51']);
    t.equal(retried.code, 0, retried.error ?? retried.stderr);
    t.equal(retried.stdout, 'flaky1\n', 'the same node, deployed this time');
    t.match(parsePoll((await run('poll', ['flaky1', 'h51', '51', 'h51'])).stdout).pairs, { STATE: 'a', VNFS: 'rocky9' });
    t.equal((await run('cancel', ['flaky1', 'h51', '51', 'h51'])).code, 0);
  });

  t.test('failures: non-zero exit, the message between the 8< markers, nothing on stdout', async (t) => {
    const file = (name: string, provision: Record<string, string>) => {
      const path = join(h.statedir, name);
      writeFileSync(path, deploymentXml(provision));
      return path;
    };
    const unknown = await run('deploy', [file('d-unknown.xml', { group: 'nosuch', image: 'rocky9' }), 'TODO', '31', 'h31']);
    t.equal(unknown.code, 1);
    t.equal(unknown.stdout, '');
    t.match(unknown.stderr, /^ERROR MESSAGE --8<------\n.+\nERROR MESSAGE ------>8--\n$/, 'the markers, around one line');
    t.match(unknown.error, /^deploy: POST \/api\/v1\/allocations: 409 no_free_node: no free node: group nosuch has no node$/);

    const taken = await h.operator.post('/allocations', { group: 'solo', vnfs: 'rocky9', owner: 'vcl-reservation-5', timeout: 30 });
    t.equal(taken.status, 201);
    const full = await run('deploy', [file('d-solo.xml', { group: 'solo', image: 'rocky9' }), 'TODO', '32', 'h32']);
    t.equal(full.code, 1);
    t.match(full.error, /^deploy: .*409 no_free_node: no free node in group solo: 1 node, 1 allocated$/);
    const theirs = await run('cancel', ['solo1', 'h32', '32', 'h32']);
    t.equal(theirs.code, 1, 'cancel of a node another owner holds');
    t.match(theirs.error, /^cancel: node solo1 is allocated to vcl-reservation-5, not to one:32: refusing to release it$/);

    const noGroup = await run('deploy', [file('d-nogroup.xml', { image: 'rocky9' }), 'TODO', '33', 'h33']);
    t.match(noGroup.error, /^deploy: deployment file .*d-nogroup\.xml: TEMPLATE\/PROVISION\/GROUP missing/);
    const noVnfs = await run('deploy', [file('d-novnfs.xml', { group: 'pool', image: 'centos9' }), 'TODO', '34', 'h34']);
    t.match(noVnfs.error, /^deploy: POST \/api\/v1\/allocations: 422 invalid: body\.vnfs: no VNFS "centos9"$/);
    t.same(await owners('one:34'), [], 'nothing allocated');

    const badToken = writeDriverConfig(join(h.statedir, 'bad-token.conf'), { ...settings, token: 'pvd_not-a-token' });
    const refused = await runDriver('poll', ['one01', 'h', '7', 'h'], { config: badToken });
    t.equal(refused.code, 1);
    t.match(refused.error, /^poll: provisiond refused the token \(GET \/api\/v1\/allocations\/one01: .*\): check token in the driver settings$/);
    const viewer = writeDriverConfig(join(h.statedir, 'viewer.conf'), { ...settings, token: await h.token('one-viewer', 'viewer') });
    const weak = await runDriver('deploy', [file('d-weak.xml', { group: 'pool', image: 'rocky9' }), 'TODO', '35', 'h35'], { config: viewer });
    t.match(weak.error, /^deploy: the token may not do this \(POST \/api\/v1\/allocations: .*\): the driver needs an operator token$/);

    const typo = join(h.statedir, 'typo.conf');
    writeFileSync(typo, `[provisiond]\nurl = ${h.apiBase}\ntoken = ${token}\ndeploy_timout = 60\n`);
    const typoRun = await runDriver('poll', ['one01', 'h', '7', 'h'], { config: typo });
    t.match(typoRun.error, new RegExp(`^poll: ${typo.replace(/[.]/g, '\\.')}: \\[provisiond\\] deploy_timout: unknown setting`), 'a settings mistake names the file and the key');
    const down = writeDriverConfig(join(h.statedir, 'down.conf'), { ...settings, url: 'http://127.0.0.1:9' });
    t.match((await runDriver('poll', ['one01', 'h', '7', 'h'], { config: down })).error, /^poll: cannot reach provisiond at http:\/\/127\.0\.0\.1:9\/api\/v1: /);
    t.match((await run('poll', ['one01', 'h'])).error, /^poll: expected 2 argument\(s\) and HOST_ID HOST/);
  });
}
