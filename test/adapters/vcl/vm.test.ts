/**
 * The VCL provisioning module (adapters/vcl) under real `perl`, called in the order VCL's new.pm
 * calls it, against a real `provisiond serve` and a real QEMU node of the e2e harness (power through
 * its QMP socket, the qemu driver). The VM starts powered off (QEMU `-S`) on VNFS demo; the
 * reservation wants image vclimg: node_status is RELOAD, load deploys it and returns 1 once the node
 * is ready on vclimg (a load log entry per phase, lastcheck updated, the OS module's post_load
 * called), then node_status is READY and get_current_image_name is vclimg; the image checks; the
 * power methods; a load during which provisiond is killed with SIGKILL and restarted still returns 1.
 * Capture (image.pm's order: capture -> does_image_exist -> get_image_size) runs
 * when the daemon has the capture operation.
 * VCL is not installable here: fixtures/lib holds stand-ins for the classes the module inherits.
 */
import t from 'tap';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../lib/cleanup.js';
import { sleep } from '../../lib/sleep.js';
import { gate } from '../../lib/gate.js';
import { e2eWhyNot } from '../../e2e/lib/prereqs.js';
import { TestNetwork } from '../../e2e/lib/netns.js';
import { Vm } from '../../e2e/lib/vm.js';
import { Cluster } from '../../e2e/lib/cluster.js';
import { perlWhyNot } from './lib/prereqs.js';
import { messages, resultOf, runVcl, type PerlRunner, type VclInput } from './lib/vcl.js';

const API_PORT = 9871;
const LOAD_TIMEOUT = 600_000;

if (gate(t, e2eWhyNot() ?? perlWhyNot())) {
  const dir = tempDir('pvd-e2e-vcl-');
  const net = await TestNetwork.create({ dir });
  const cluster = new Cluster({ net, statedir: join(dir, 'state'), readyInterval: 5, log: (m) => t.comment(m), extraConfig: `api: { port: ${API_PORT} }` });
  // Powered off: QEMU waits stopped (-S) until the qemu driver's `cont`.
  const vm = new Vm({ name: 'vcl1', firmware: 'bios', mac: '52:54:00:99:03:41', net, dir, extraArgs: ['-S'] });
  t.teardown(async () => {
    await vm.stop();
    await cluster.stop();
    await net.destroy();
    if (!process.env.PVD_E2E_KEEP) rmSync(dir, { recursive: true, force: true });
    else t.comment(`kept ${dir}`);
  });

  await cluster.prepare();
  await cluster.vmGroups(['cluster']);
  await cluster.cli(['node', 'add', vm.mac, 'vcl1', '--group', 'cluster', '--vnfs', 'demo']);
  await cluster.cli(['node', 'set', 'power.driver', 'qemu', 'vcl1']);
  await cluster.cli(['node', 'set', 'power.address', vm.qmpSocket, 'vcl1']);
  // The reservation's image: a VNFS of the VCL image's name (built when the node first asks for it).
  await cluster.cli(['vnfs', 'clone', 'demo', 'vclimg']);
  const operator = (await cluster.cli(['token', 'create', 'vcl', '--role', 'operator'])).trim();
  const admin = (await cluster.cli(['token', 'create', 'vcl-capture', '--role', 'admin'])).trim();
  await cluster.start();
  await vm.start();

  const base = `http://127.0.0.1:${API_PORT}`;
  // The module runs where the API listens: inside the test namespace.
  const perl: PerlRunner = (args, timeoutMs) => net.exec('perl', args, timeoutMs);
  const input = (calls: VclInput['calls'], token = operator): VclInput => ({
    variables: { 'provisiond|api_url': base, 'provisiond|token': token, 'provisiond|poll_interval': '2' },
    data: { computer_node_name: 'vcl1', image_name: 'vclimg', image_reload_time: 10, reservation_id: 1001, computer_id: 11 },
    os: true,
    calls,
  });
  const api = async (path: string) => JSON.parse(await net.exec('curl', ['-sf', '-H', `Authorization: Bearer ${operator}`, `${base}/api/v1${path}`])) as Record<string, unknown>;

  t.test('new.pm order: node_status RELOAD -> load -> node_status READY on the image', async (t) => {
    const out = await runVcl(
      input([
        { method: 'node_status' },
        { method: 'load' },
        { method: 'node_status' },
        { method: 'get_current_image_name' },
        { method: 'power_status' },
        { method: 'does_image_exist' },
        { method: 'get_image_size' },
        { method: 'does_image_exist', args: ['nosuch'] },
        { method: 'get_image_size', args: ['nosuch'] },
      ]),
      { perl, timeoutMs: LOAD_TIMEOUT },
    );
    const load = out.results.find((r) => r.method === 'load')!;
    t.comment(`load: ${load.seconds} s; load log: ${out.loadlog.map((l) => l.state).join(' -> ')}`);
    t.equal(resultOf(out, 'node_status', 0), 'RELOAD', 'node_status before: RELOAD (a string)');
    t.equal(load.result, 1, `load: 1 (${messages(out, 'WARNING')})`);
    t.equal(resultOf(out, 'node_status', 1), 'READY', 'node_status after: READY');
    t.equal(resultOf(out, 'get_current_image_name'), 'vclimg');
    t.equal(resultOf(out, 'power_status'), 'on');
    const vnfs = await api('/vnfs/vclimg');
    const mb = Math.ceil((vnfs.imageBytes as number) / 1048576);
    t.ok(mb > 0, `the image was built (${mb} MB)`);
    t.same(out.results.slice(5).map((r) => r.result), [1, mb, 0, null], 'does_image_exist 1, get_image_size in MB; a missing image: 0, undef');
    const states = out.loadlog.map((l) => l.state);
    t.equal(states[0], 'info');
    t.equal(states.at(-1), 'loadimagecomplete');
    const phases = states.filter((s) => s.startsWith('provisiond_')).map((s) => s.slice('provisiond_'.length));
    const order = ['power', 'dhcp', 'kernel', 'init', 'getfile', 'ready'];
    t.same(phases, [...phases].sort((a, b) => order.indexOf(a) - order.indexOf(b)), `the phases in order: ${phases.join(', ')}`);
    t.ok(['power', 'dhcp', 'ready'].every((p) => phases.includes(p)), 'power, dhcp and ready among them');
    t.ok(out.loadlog.every((l) => l.reservation === 1001 && l.computer === 11), 'logged for the reservation and computer');
    t.ok(out.lastcheck.length >= Math.floor(load.seconds / 60) - 1, `lastcheck updated every minute (${out.lastcheck.length} times in ${load.seconds} s)`);
    t.same(out.os, ['post_load'], 'the OS module\'s post_load was called');
    const node = await api('/nodes/vcl1');
    t.equal(node.vnfs, 'vclimg', 'provisiond has the node on vclimg');
    t.equal(node.bootVnfs, 'vclimg');
  });

  t.test('provisiond killed with SIGKILL during load: the task resumes, load still returns 1', async (t) => {
    const since = Date.now();
    const loading = runVcl({ ...input([{ method: 'load' }, { method: 'node_status' }]), data: { ...input([]).data, image_name: 'demo' } }, { perl, timeoutMs: LOAD_TIMEOUT });
    let failed: unknown = null;
    loading.catch((err: unknown) => (failed = err));
    // Killed once the node booted its stage-1 (iPXE does not retry a cut download; the stage-1 does).
    const deadline = Date.now() + 180_000;
    for (;;) {
      const r = await api(`/nodes/vcl1/timeline?since=${since}`).catch(() => ({ events: [] }));
      const events = (r as { events?: Array<{ stage: string; source: string }> }).events ?? [];
      if (events.some((e) => e.source === 'http' && e.stage === 'http initramfs.img')) break;
      if (failed || Date.now() > deadline) throw new Error(`the node never fetched its initramfs during the load: ${String(failed ?? JSON.stringify(r))}`);
      await sleep(200);
    }
    await cluster.kill9();
    t.comment('provisiond killed with SIGKILL while load waited for the node');
    await sleep(3000);
    await cluster.start();
    const out = await loading;
    t.equal(resultOf(out, 'load'), 1, `load: 1 (${messages(out, 'WARNING')})`);
    t.equal(resultOf(out, 'node_status'), 'READY');
    t.match(messages(out, 'WARNING'), /GET \/tasks\/[\w-]+: 500 Can't connect/, 'the polls that found no daemon were logged, and load went on');
  });

  t.test('image.pm order: capture -> does_image_exist -> get_image_size', async (t) => {
    const out = await runVcl(
      input([{ method: 'capture', set: { image_name: 'vclcap' } }, { method: 'does_image_exist' }, { method: 'get_image_size' }], admin),
      { perl, timeoutMs: LOAD_TIMEOUT },
    );
    t.equal(resultOf(out, 'capture'), 1, `capture: 1 (${messages(out, 'WARNING')})`);
    t.equal(resultOf(out, 'does_image_exist'), 1, 'the captured image exists');
    const size = resultOf(out, 'get_image_size') as number;
    t.ok(size > 0, `its size: ${size} MB`);
    t.same(out.os, ['pre_capture end_state=on'], 'the OS module\'s pre_capture was called, the node staying on');
  });

  t.test('power_off, power_status, power_on through the node\'s QMP socket', async (t) => {
    const out = await runVcl(input([{ method: 'power_off' }, { method: 'power_status' }, { method: 'node_status' }, { method: 'power_on' }, { method: 'power_status' }]), { perl, timeoutMs: 300_000 });
    t.same(out.results.map((r) => r.result), [1, 'off', 'RELOAD', 1, 'on'], 'off, off, RELOAD while off, on, on');
    t.match(messages(out, 'OK'), /vcl1: RELOAD: .*(off|power)/i, 'node_status says it is powered off');
  });
}
