/**
 * OpenNebula's oneprovision driving a real node through provisiond's provision driver
 * (adapters/opennebula/pm/provisiond, real python3): OpenNebula is not installable here, so the
 * test runs the executables exactly as oneprovision does (test/adapters/lib/oneprovision.ts: the
 * argv with HOST_ID HOST appended, through `sh -c`, stdin empty) and feeds the deployment XML
 * oneprovision would write. The node is a BIOS VM, started powered off (QEMU `-S`) and driven
 * through its QMP socket (the qemu power driver).
 *
 * deploy allocates it from the XML's GROUP, deploys IMAGE and returns once it is ready, printing
 * only its name, though provisiond is killed with SIGKILL (and started again) while it waits; poll, parsed as oneprovision parses it, gives the node's DHCP lease address;
 * reboot brings it back ready through a new boot; cancel releases it and powers it off.
 */
import t from 'tap';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../lib/cleanup.js';
import { sleep } from '../lib/sleep.js';
import { gate, missingCommands } from '../lib/gate.js';
import { deploymentXml, parsePoll, runDriver, writeDriverConfig, type DriverRun } from '../adapters/lib/oneprovision.js';
import { e2eWhyNot } from './lib/prereqs.js';
import { TestNetwork } from './lib/netns.js';
import { Vm } from './lib/vm.js';
import { Cluster } from './lib/cluster.js';

const READY_INTERVAL = 5;
const BOOT_TIMEOUT = 480;
const API_PORT = 9870;
const HOST_ID = '42';

if (gate(t, e2eWhyNot() ?? (missingCommands(['python3']).length ? 'the OpenNebula driver test needs python3' : null))) {
  // Two PXE boots of an emulated CPU on a shared machine, plus building the images.
  t.setTimeout(1_500_000);
  const dir = tempDir('pvd-e2e-one-');
  const net = await TestNetwork.create({ dir });
  const cluster = new Cluster({ net, statedir: join(dir, 'state'), readyInterval: READY_INTERVAL, log: (m) => t.comment(m), extraConfig: `api: { port: ${API_PORT} }` });
  // -S: powered off until the deploy powers it on; -no-shutdown: an ACPI power-off leaves QEMU there to be powered on again.
  const vm = new Vm({ name: 'one1', firmware: 'bios', mac: '52:54:00:99:0e:01', net, dir, extraArgs: ['-S', '-no-shutdown'] });
  t.teardown(async () => {
    await vm.stop();
    await cluster.stop();
    await net.destroy();
    if (!process.env.PVD_E2E_KEEP) rmSync(dir, { recursive: true, force: true });
    else t.comment(`kept ${dir}`);
  });

  await cluster.prepare();
  await cluster.vmGroups(['hypervisors']);
  await cluster.cli(['node', 'add', vm.mac, 'kvm1', '--group', 'hypervisors', '--vnfs', 'demo']);
  await cluster.cli(['node', 'set', 'power.driver', 'qemu', 'kvm1']);
  await cluster.cli(['node', 'set', 'power.address', vm.qmpSocket, 'kvm1']);
  const token = (await cluster.cli(['token', 'create', 'opennebula', '--role', 'operator'])).trim();
  await cluster.start();
  await vm.start();

  const config = writeDriverConfig(join(dir, 'provisiond.conf'), {
    url: `http://127.0.0.1:${API_PORT}`,
    token,
    deploy_timeout: BOOT_TIMEOUT,
    shutdown_grace: 30,
    poll_interval: 2,
  });
  // oneprovision runs on the front-end; here the driver runs inside the test network's namespace, where the API listens.
  const run = (action: string, args: string[], stdin?: string): Promise<DriverRun> =>
    runDriver(action, args, { config, stdin, timeoutMs: (BOOT_TIMEOUT + 120) * 1000, spawn: (cmd, argv, options) => net.spawn(cmd, argv, options) });
  const api = async (path: string) => JSON.parse(await net.exec('curl', ['-s', '-H', `Authorization: Bearer ${token}`, `http://127.0.0.1:${API_PORT}/api/v1${path}`])) as Record<string, unknown>;

  t.test('deploy (provisiond killed -9 meanwhile) -> poll -> reboot -> cancel, as oneprovision calls them', async (t) => {
    const file = join(dir, 'deployment.xml');
    writeFileSync(file, deploymentXml({ group: 'hypervisors', image: 'demo', hostname: 'kvm-host-42' }));
    let started = Date.now();
    const deploying = run('deploy', [file, 'TODO', HOST_ID, 'provision-42']);
    // provisiond is killed with SIGKILL while the deploy waits for the node (booting its stage-1),
    // and started again: the task it acknowledged goes on, and the driver keeps asking.
    const deadline = Date.now() + BOOT_TIMEOUT * 1000;
    for (;;) {
      const events = ((await api(`/nodes/kvm1/timeline?since=${started}`).catch(() => ({}))) as { events?: Array<{ source: string; stage: string }> }).events ?? [];
      if (events.some((e) => e.source === 'http' && e.stage === 'http initramfs.img')) break;
      if (Date.now() > deadline) throw new Error(`the node never fetched its initramfs after the deploy began: ${JSON.stringify(events)}`);
      await sleep(200);
    }
    await cluster.kill9();
    t.comment('provisiond killed with SIGKILL while the deploy waited for the node');
    await cluster.start();
    const deployed = await deploying;
    t.equal(deployed.code, 0, `deploy succeeded (${deployed.error ?? deployed.stderr.trim()})`);
    t.equal(deployed.stdout, 'kvm1\n', 'deploy printed only the deploy id: the node name');
    t.comment(`deploy: allocated and ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    t.match(await api('/allocations/kvm1'), { owner: `one:${HOST_ID}`, hostname: 'kvm-host-42', vnfs: 'demo' }, 'allocated to the host, with its HOSTNAME');

    const polled = await run('poll', ['kvm1', 'provision-42', HOST_ID, 'provision-42']);
    t.equal(polled.code, 0, polled.error ?? polled.stderr);
    t.comment(`poll: ${polled.stdout.trim()}`);
    const { pairs, ips } = parsePoll(polled.stdout);
    const node = await api('/nodes/kvm1');
    t.ok(typeof node.leaseAddress === 'string' && node.leaseAddress !== '', `the node holds a lease (${String(node.leaseAddress)})`);
    t.same(ips, [node.leaseAddress], 'oneprovision renames the host to the node\'s lease address');
    t.match(pairs, { STATE: 'a', VERDICT: 'READY', POWER: 'on', PROVISIOND_STATE: 'ready', VNFS: 'demo', OWNER: `one:${HOST_ID}` });

    const ip = ips[0]!;
    const rebootedAt = Date.now();
    started = rebootedAt;
    const rebooted = await run('reboot', ['kvm1', ip, HOST_ID, ip]);
    t.equal(rebooted.code, 0, `reboot succeeded (${rebooted.error ?? rebooted.stderr.trim()})`);
    t.comment(`reboot: back ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    const timeline = (await api(`/nodes/kvm1/timeline?since=${rebootedAt}`)) as { events: Array<{ source: string; stage: string }> };
    t.ok(timeline.events.some((e) => e.source === 'power' && /shutdown/.test(e.stage)), 'an ACPI shutdown first');
    t.ok(timeline.events.some((e) => e.stage === 'ready'), 'then a new boot, up to ready');
    const tasks = (await api('/tasks?limit=5')) as { items: Array<{ action: string; nodes: Array<{ messages: Array<{ message: string }> }> }> };
    const powered = tasks.items.find((task) => task.action === 'reload')?.nodes[0]?.messages.find((m) => /^(powered on|power cycled) to boot pxe/.test(m.message))?.message;
    t.ok(powered, `the reload powered the node on or cycled it: ${powered}`);
    // The demo VNFS runs no ACPI daemon: it ignores the request and is power cycled after shutdown_grace.
    t.comment(/^powered on/.test(powered ?? '') ? 'the OS powered off on the ACPI request' : 'the OS ignored the ACPI request: power cycled after shutdown_grace');
    t.match(parsePoll((await run('poll', ['kvm1', ip, HOST_ID, ip])).stdout).pairs, { STATE: 'a' });

    const cancelled = await run('cancel', ['kvm1', ip, HOST_ID, ip]);
    t.equal(cancelled.code, 0, cancelled.error ?? cancelled.stderr);
    t.equal(cancelled.stdout, '');
    t.match(await api('/allocations'), { items: [] }, 'the allocation is gone');
    t.match(await api('/nodes/kvm1/power'), { state: 'off' }, 'the node is powered off');
  });
}
