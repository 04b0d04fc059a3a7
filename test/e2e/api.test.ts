/**
 * The admin API driving a real node: a reload task of a BIOS VM (power through its QMP socket, the
 * qemu driver) followed over `/api/v1/events` — the phases arrive in order and the task completes
 * `success` — then a second reload during which the daemon is killed with SIGKILL and started
 * again: the task, accepted before the crash, resumes and completes when the node is ready. A reload
 * of a node whose power driver fails ends `failure` with the driver's message. A deploy task sets the
 * node's VNFS to another and the node comes up ready on it.
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
const API_PORT = 9870;

interface TaskNode {
  node: string;
  status: string;
  result: string;
  phase: string | null;
  messages: Array<{ message: string; error: boolean }>;
}
interface Task {
  id: string;
  status: string;
  result: string;
  nodes: TaskNode[];
}
interface SseEvent {
  id: string;
  event: string;
  data: Record<string, unknown>;
}

/** Parses SSE text blocks into events. */
function parseEvents(text: string, into: SseEvent[]): string {
  let buf = text;
  let end: number;
  while ((end = buf.indexOf('\n\n')) >= 0) {
    const block = buf.slice(0, end);
    buf = buf.slice(end + 2);
    const f: Record<string, string> = {};
    for (const line of block.split('\n')) {
      const m = /^(\w+): ?(.*)$/.exec(line);
      if (m) f[m[1]!] = m[2]!;
    }
    if (f.data && f.event) into.push({ id: f.id ?? '', event: f.event, data: JSON.parse(f.data) as Record<string, unknown> });
  }
  return buf;
}

if (gate(t, e2eWhyNot())) {
  const dir = tempDir('pvd-e2e-api-');
  const net = await TestNetwork.create({ dir });
  const cluster = new Cluster({
    net,
    statedir: join(dir, 'state'),
    readyInterval: READY_INTERVAL,
    log: (m) => t.comment(m),
    // On the namespace's loopback; the test's clients (curl) run inside the namespace.
    extraConfig: `api: { port: ${API_PORT} }`,
  });
  const vm = new Vm({ name: 'api1', firmware: 'bios', mac: '52:54:00:99:02:31', net, dir });
  t.teardown(async () => {
    await vm.stop();
    await cluster.stop();
    await net.destroy();
    if (!process.env.PVD_E2E_KEEP) rmSync(dir, { recursive: true, force: true });
    else t.comment(`kept ${dir}`);
  });

  await cluster.prepare();
  await cluster.vmGroups(['cluster']);
  await cluster.cli(['node', 'add', vm.mac, 'api1', '--group', 'cluster', '--vnfs', 'demo']);
  await cluster.cli(['node', 'set', 'power.driver', 'qemu', 'api1']);
  await cluster.cli(['node', 'set', 'power.address', vm.qmpSocket, 'api1']);
  // A second VNFS for the deploy test (its image is built when a node first asks for it).
  await cluster.cli(['vnfs', 'clone', 'demo', 'demo2']);
  await cluster.cli(['node', 'add', '52:54:00:99:02:32', 'badbmc1', '--group', 'cluster', '--vnfs', 'demo']);
  await cluster.cli(['node', 'set', 'power.driver', 'qemu', 'badbmc1']);
  await cluster.cli(['node', 'set', 'power.address', join(dir, 'no-such-vm.qmp'), 'badbmc1']);
  const token = (await cluster.cli(['token', 'create', 'e2e', '--role', 'operator'])).trim();
  await cluster.start();
  const base = `http://127.0.0.1:${API_PORT}/api/v1`;
  /** curl inside the namespace: the status and the JSON body. */
  const api = async (method: string, path: string, body?: unknown) => {
    const args = ['-s', '-X', method, '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/json', '-w', '\n%{http_code}'];
    if (body !== undefined) args.push('--data-binary', JSON.stringify(body));
    const out = await net.exec('curl', [...args, base + path]);
    const nl = out.lastIndexOf('\n');
    return { status: Number(out.slice(nl + 1)), body: JSON.parse(out.slice(0, nl) || '{}') as Record<string, unknown> };
  };
  /** `curl -N` on /events inside the namespace, parsed into `into` until stopped. */
  const readEvents = (query: string, into: SseEvent[]) => {
    const child = net.spawn('curl', ['-sN', '-H', `Authorization: Bearer ${token}`, `${base}/events?${query}`]);
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (buf = parseEvents(buf + d, into)));
    return () => child.kill('SIGTERM');
  };
  const waitTask = async (id: string, timeoutMs: number): Promise<Task> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await api('GET', `/tasks/${id}`).catch(() => null);
      const task = r?.status === 200 ? (r.body as unknown as Task) : null;
      if (task && (task.status === 'complete' || task.status === 'terminated')) return task;
      if (Date.now() > deadline) throw new Error(`task ${id} still ${task?.status ?? 'unreadable'} after ${timeoutMs / 1000} s: ${JSON.stringify(task)}`);
      await sleep(1000);
    }
  };

  // The first boot, from power-on, so that the node is up when the reloads begin.
  await vm.start();
  await cluster.waitForNode(vm.mac, (n) => n.state === 'ready', BOOT_TIMEOUT, 'ready (first boot)');

  t.test('a reload task: phases in order over /events, then success', async (t) => {
    const events: SseEvent[] = [];
    const stop = readEvents('node=api1&kind=task,timeline', events);
    await sleep(1000);
    const started = Date.now();
    const posted = await api('POST', '/nodes/api1/reload', {});
    t.equal(posted.status, 202, 'POST /nodes/api1/reload: 202 Accepted');
    const id = (posted.body as unknown as Task).id;
    const task = await waitTask(id, BOOT_TIMEOUT);
    await sleep(500);
    stop();
    t.equal(task.status, 'complete');
    t.equal(task.result, 'success', `the task succeeded (${JSON.stringify(task.nodes[0]?.messages)})`);
    t.equal(task.nodes[0]?.phase, 'ready');
    const phases: string[] = [];
    for (const e of events) {
      if (e.event !== 'task' || e.data.id !== id) continue;
      const p = (e.data.phases as Record<string, { phase: string | null }>).api1?.phase;
      if (p && phases.at(-1) !== p) phases.push(p);
    }
    t.comment(`phases over /events: ${phases.join(' -> ')} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    const order = ['power', 'dhcp', 'kernel', 'init', 'getfile', 'ready'];
    t.same(phases, [...phases].sort((a, b) => order.indexOf(a) - order.indexOf(b)), 'the phases arrived in order');
    t.ok(['dhcp', 'init', 'ready'].every((p) => phases.includes(p)), `dhcp, init and ready among them: ${phases.join(', ')}`);
    t.ok(events.some((e) => e.event === 'timeline' && e.data.stage === 'ready'), 'the node\'s timeline steps came over /events too');
  });

  t.test('the daemon is killed with SIGKILL while a reload waits: the task resumes and completes', async (t) => {
    const posted = await api('POST', '/nodes/api1/reload', {});
    t.equal(posted.status, 202);
    const id = (posted.body as unknown as Task).id;
    // The node has its kernel and initramfs and is booting them: the daemon dies then. (Killed in the
    // middle of iPXE's download, the node would be stuck in its firmware: iPXE does not retry a cut
    // transfer; the stage-1's own requests, DHCP and the init script, retry until the master is back.)
    const since = (posted.body as unknown as Task & { created: number }).created;
    const deadline = Date.now() + 120_000;
    for (;;) {
      const r = await api('GET', `/nodes/api1/timeline?since=${since}`);
      const events = (r.body as { events?: Array<{ stage: string; source: string }> }).events ?? [];
      if (events.some((e) => e.source === 'http' && e.stage === 'http initramfs.img')) break;
      if (Date.now() > deadline) throw new Error(`the node never fetched its initramfs after the reload: ${JSON.stringify(r.body)}`);
      await sleep(100);
    }
    await cluster.kill9();
    t.comment('provisiond killed with SIGKILL while the reload task waited for the node (booting its stage-1)');
    await cluster.start();
    const task = await waitTask(id, BOOT_TIMEOUT);
    t.equal(task.status, 'complete', 'the task was taken over by the restarted daemon');
    t.equal(task.result, 'success', `and completed (${JSON.stringify(task.nodes[0]?.messages)})`);
  });

  t.test('a reload of a node whose power driver fails ends failure with the driver\'s message', async (t) => {
    const posted = await api('POST', '/nodes/badbmc1/reload', {});
    t.equal(posted.status, 202);
    const task = await waitTask((posted.body as unknown as Task).id, 120_000);
    t.equal(task.status, 'complete');
    t.equal(task.result, 'failure');
    const msgs = task.nodes[0]!.messages.filter((m) => m.error).map((m) => m.message).join('; ');
    t.match(msgs, /no-such-vm\.qmp|ENOENT|QMP/i, `the driver's message: ${msgs}`);
  });

  t.test('a deploy task sets another VNFS and the node comes up ready on it', async (t) => {
    const missing = await api('POST', '/nodes/api1/deploy', { vnfs: 'no-such-vnfs' });
    t.equal(missing.status, 422, 'a VNFS that does not exist: 422');
    t.match(missing.body, { error: { field: 'body.vnfs' } });
    const posted = await api('POST', '/nodes/api1/deploy', { vnfs: 'demo2' });
    t.equal(posted.status, 202, 'POST /nodes/api1/deploy {vnfs: demo2}: 202 Accepted');
    const id = (posted.body as unknown as Task).id;
    const node = await api('GET', '/nodes/api1');
    t.equal((node.body as { vnfs?: string }).vnfs, 'demo2', 'the VNFS is set as soon as the task runs');
    const task = await waitTask(id, BOOT_TIMEOUT);
    t.equal(task.result, 'success', `the task succeeded (${JSON.stringify(task.nodes[0]?.messages)})`);
    const messages = task.nodes[0]!.messages.map((m) => m.message);
    t.ok(messages.includes('vnfs: set to demo2'), 'the VNFS step is in the task');
    t.match(messages.at(-1), /^ready on demo2/, 'ready on the deployed VNFS');
    const timeline = await api('GET', `/nodes/api1/timeline?since=${(posted.body as unknown as { created: number }).created}`);
    const steps = (timeline.body as { events: Array<{ source: string; stage: string; msg: string | null }> }).events;
    t.ok(steps.some((e) => e.source === 'node' && /demo2/.test(`${e.stage} ${e.msg ?? ''}`)), 'the node fetched demo2 (its timeline says so)');
  });
}
