/**
 * Capture end to end: a BIOS VM boots the demo VNFS; a node-specific `ready` nodescript (the
 * admin's own mechanism) changes a file on it; the admin API captures it as a new VNFS (the node's
 * ready agent hears of it on its long-poll and uploads with busybox tar and nc); a second VM boots
 * the captured VNFS, and its own ready nodescript exits 0 only when the changed file is there: the
 * timeline shows `ready exit 0`. Two VMs, one at a time.
 */
import t from 'tap';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
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
const API_PORT = 9870;

interface Task {
  id: string;
  status: string;
  result: string;
  nodes: Array<{ phase: string | null; messages: Array<{ message: string }> }>;
}

if (gate(t, e2eWhyNot())) {
  const dir = tempDir('pvd-e2e-capture-');
  const net = await TestNetwork.create({ dir });
  const statedir = join(dir, 'state');
  const cluster = new Cluster({ net, statedir, readyInterval: READY_INTERVAL, log: (m) => t.comment(m), extraConfig: `api: { port: ${API_PORT} }` });
  const first = new Vm({ name: 'cap1', firmware: 'bios', mac: '52:54:00:99:0c:01', net, dir });
  const second = new Vm({ name: 'cap2', firmware: 'bios', mac: '52:54:00:99:0c:02', net, dir });
  t.teardown(async () => {
    await first.stop();
    await second.stop();
    await cluster.stop();
    await net.destroy();
    if (!process.env.PVD_E2E_KEEP) rmSync(dir, { recursive: true, force: true });
    else t.comment(`kept ${dir}`);
  });

  await cluster.prepare();
  await cluster.vmGroups(['cluster']);
  await cluster.cli(['node', 'add', first.mac, 'cap1', '--group', 'cluster', '--vnfs', 'demo']);
  await cluster.cli(['node', 'add', second.mac, 'cap2', '--group', 'cluster', '--vnfs', 'demo']);
  // Sent verbatim to the node at its ready check-ins: cap1 changes a file; cap2 says whether it has it.
  const script = (node: string, text: string) => {
    mkdirSync(join(statedir, 'nodescripts/ready/node', node), { recursive: true });
    writeFileSync(join(statedir, 'nodescripts/ready/node', node, '50-capture-test'), `#!/bin/sh\n${text}\n`);
  };
  script('cap1', 'echo "changed on cap1" > /etc/capture-marker');
  script('cap2', 'if [ "$(cat /etc/capture-marker 2>/dev/null)" = "changed on cap1" ]; then exit 0; else exit 7; fi');
  const token = (await cluster.cli(['token', 'create', 'e2e', '--role', 'admin'])).trim();
  await cluster.start();
  const base = `http://127.0.0.1:${API_PORT}/api/v1`;
  const api = async (method: string, path: string, body?: unknown) => {
    const args = ['-s', '-X', method, '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/json', '-w', '\n%{http_code}'];
    if (body !== undefined) args.push('--data-binary', JSON.stringify(body));
    const out = await net.exec('curl', [...args, base + path]);
    const nl = out.lastIndexOf('\n');
    return { status: Number(out.slice(nl + 1)), body: JSON.parse(out.slice(0, nl) || '{}') as Record<string, unknown> };
  };
  const readyExits = async (name: string, since: number): Promise<string[]> =>
    (await cluster.timelineEvents(name)).filter((e) => e.source === 'node' && e.stage === 'ready' && Number(new Date(e.time)) >= since).map((e) => e.msg ?? '');

  t.test('a change made on a node is in the VNFS captured from it, and on the node that boots it', async (t) => {
    const bootedAt = Date.now();
    await first.start();
    await cluster.waitForNode(first.mac, (n) => n.state === 'ready', BOOT_TIMEOUT, 'ready (cap1)');
    // The agent's first check-in ran the script that changes the file.
    for (let i = 0; i < 60 && (await readyExits('cap1', bootedAt)).length === 0; i++) await sleep(2000);
    t.ok((await readyExits('cap1', bootedAt)).includes('exit 0'), 'cap1 ran its ready script');

    const began = Date.now();
    const posted = await api('POST', '/nodes/cap1/capture', { vnfs: 'captured', exclude: ['/var/log/*'] });
    t.equal(posted.status, 202, 'POST /nodes/cap1/capture: 202');
    const id = (posted.body as unknown as Task).id;
    let task: Task | null = null;
    for (let i = 0; i < 300 && !(task && (task.status === 'complete' || task.status === 'terminated')); i++) {
      await sleep(1000);
      task = (await api('GET', `/tasks/${id}`)).body as unknown as Task;
    }
    t.equal(task?.result, 'success', `the capture succeeded (${JSON.stringify(task?.nodes[0]?.messages.map((m) => m.message))})`);
    t.comment(`capture took ${((Date.now() - began) / 1000).toFixed(1)} s: ${task?.nodes[0]?.messages.at(-1)?.message}`);
    await first.stop();

    await cluster.cli(['node', 'set', 'vnfs', 'captured', 'cap2']);
    const secondAt = Date.now();
    await second.start();
    await cluster.waitForNode(second.mac, (n) => n.state === 'ready', BOOT_TIMEOUT, 'ready (cap2 on the captured VNFS)');
    for (let i = 0; i < 60 && (await readyExits('cap2', secondAt)).length === 0; i++) await sleep(2000);
    const exits = await readyExits('cap2', secondAt);
    t.equal(exits[0], 'exit 0', `cap2, booted from the captured VNFS, has the change (ready script: ${exits.join(', ')})`);
  });
}
