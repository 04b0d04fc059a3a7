/**
 * The Drydock node driver deploys a real node: identify_node then deploy_node of a QEMU VM of the
 * e2e harness (power through its QMP socket, the qemu driver), the drivers under the real python3
 * through the stand-in of Drydock's orchestrator (Drydock itself is not installable here). The node
 * comes up ready on the VNFS of its Drydock platform image, mapped with vnfs_map, and the Drydock
 * task carries the phases provisiond followed it through.
 */
import t from 'tap';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../lib/cleanup.js';
import { gate } from '../lib/gate.js';
import { e2eWhyNot } from '../e2e/lib/prereqs.js';
import { TestNetwork } from '../e2e/lib/netns.js';
import { Vm } from '../e2e/lib/vm.js';
import { Cluster } from '../e2e/lib/cluster.js';
import { drydock, messagesOf, type DTask } from './lib/drydock.js';

const API_PORT = 9870;
const BOOT_TIMEOUT = 600_000;

if (gate(t, e2eWhyNot())) {
  const dir = tempDir('pvd-drydock-deploy-');
  const net = await TestNetwork.create({ dir });
  const cluster = new Cluster({ net, statedir: join(dir, 'state'), readyInterval: 5, log: (m) => t.comment(m), extraConfig: `api: { port: ${API_PORT} }` });
  const vm = new Vm({ name: 'dd1', firmware: 'bios', mac: '52:54:00:99:0d:01', net, dir });
  t.teardown(async () => {
    await vm.stop();
    await cluster.stop();
    await net.destroy();
    if (!process.env.PVD_E2E_KEEP) rmSync(dir, { recursive: true, force: true });
  });

  await cluster.prepare();
  await cluster.vmGroups(['cluster']);
  await cluster.cli(['node', 'add', vm.mac, 'dd1', '--group', 'cluster', '--vnfs', 'demo']);
  await cluster.cli(['node', 'set', 'power.driver', 'qemu', 'dd1']);
  await cluster.cli(['node', 'set', 'power.address', vm.qmpSocket, 'dd1']);
  await cluster.cli(['vnfs', 'clone', 'demo', 'compute-v2']);
  const token = (await cluster.cli(['token', 'create', 'drydock', '--role', 'operator'])).trim();
  await cluster.start();

  t.test('identify_node then deploy_node: the VM comes up ready on the VNFS of its platform image', async (t) => {
    // Powered on: it starts booting demo; the deploy power cycles it into compute-v2.
    await vm.start();
    const started = Date.now();
    const { code, out, stderr } = await drydock(
      {
        driver: 'node',
        nodes: [{ name: 'rack1-node1', boot_mac: vm.mac.toUpperCase(), image: 'rocky' }],
        steps: [
          { action: 'identify_node', nodes: ['rack1-node1'] },
          { action: 'deploy_node', nodes: ['rack1-node1'] },
          { action: 'interrogate_node', nodes: ['rack1-node1'] },
        ],
      },
      { PROVISIOND_API_URL: `http://127.0.0.1:${API_PORT}`, PROVISIOND_TOKEN: token, PROVISIOND_VNFS_MAP: 'rocky=compute-v2', PROVISIOND_POLL_INTERVAL: '1' },
      { spawner: (cmd, args, o) => net.spawn(cmd, args, o), timeoutMs: BOOT_TIMEOUT },
    );
    t.equal(code, 0, stderr);
    const [identify, deploy, interrogate] = out.tasks as [DTask, DTask, DTask];
    t.same(identify.result.successes, ['rack1-node1']);
    const msgs = messagesOf(deploy, 'rack1-node1');
    t.comment(`deploy_node took ${((Date.now() - started) / 1000).toFixed(0)} s: ${msgs.map((m) => m.message).join(' | ')}`);
    t.equal(deploy.status, 'complete');
    t.match(deploy.result, { status: 'success', successes: ['rack1-node1'], failures: [] }, 'deploy_node succeeded');
    t.match(msgs[0], { message: 'Deploying VNFS compute-v2 on provisiond node dd1.' });
    t.match(msgs.at(-1), { message: /^Node deployed: ready on compute-v2/, error: false });
    const phases = msgs.map((m) => /phase (\w+)\.$/.exec(m.message)?.[1]).filter(Boolean);
    t.ok(phases.includes('ready') && phases.length >= 3, `the phases are status messages: ${phases.join(', ')}`);
    t.match(await cluster.nodeByMac(vm.mac), { name: 'dd1', vnfs: 'compute-v2', state: 'ready' }, 'provisiond has the node ready on compute-v2');
    t.match(messagesOf(interrogate, 'rack1-node1'), [{ message: /^provisiond node dd1: state ready, verdict READY, vnfs compute-v2, booted compute-v2, owner -, power on \(qemu\)\.$/ }], 'interrogate_node sees it READY on compute-v2');
  });
}
