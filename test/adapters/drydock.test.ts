/**
 * The Airship Drydock drivers (adapters/drydock/) under the real python3, driven the way Drydock's
 * orchestrator drives its drivers: a task per action with a node filter, then
 * `driver.execute_task(task_id)`. Drydock itself is not installable here (oslo, SQLAlchemy,
 * PostgreSQL, MaaS), so test/adapters/fixtures/drydock_standin.py stands in for its orchestrator and
 * state manager, written from its documented task model.
 * Against a real provisiond (its admin API, an operator token) with real BMCs: OpenIPMI's ipmi_sim
 * through ipmitool, plus one node whose BMC is down, so the tasks end partial_success with that
 * node's failure message, as a Drydock operator would see it.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort, haveIpmiSim, IPMI_PASSWORD, IPMI_USER, startIpmiSim } from '../power/lib/ipmi-sim.js';
import { gate, missingCommands } from '../lib/gate.js';
import { startApiDaemon } from '../api/lib/harness.js';
import { drydock, messagesOf, type DTask } from './lib/drydock.js';

const why = haveIpmiSim() ? (missingCommands(['python3']).length ? 'python3 not installed' : null) : 'ipmi_sim or ipmitool not installed (Debian packages openipmi, ipmitool)';
if (gate(t, why)) {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-drydock-'));
  const sim = await startIpmiSim(dir, await freeTcpPort());
  t.teardown(async () => {
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  // The BMC of the second node is down: nothing answers on this port.
  const downBmc = `127.0.0.1:${await freeTcpPort()}`;
  const h = await startApiDaemon(t, 'power:\n  timeout: 10\n  retries: 0\n');
  const reg = h.daemon.registry;
  await reg.importNodes([
    { name: 'n0001', nodeid: '52:54:00:dd:00:01', group: 'rack1', vnfs: 'demo' },
    { name: 'n0002', nodeid: '52:54:00:dd:00:02', group: 'rack1', vnfs: 'demo' },
  ]);
  const ipmi = (address: string, args: string) => ({ 'power.driver': 'ipmi', 'power.address': address, 'power.user': IPMI_USER, 'power.password': IPMI_PASSWORD, 'power.args': args });
  await reg.updateNode('n0001', { attrs: ipmi(sim.address, '-C 1') });
  await reg.updateNode('n0002', { attrs: ipmi(downBmc, '-C 1 -N 1 -R 1') });
  const env = { PROVISIOND_API_URL: h.apiBase, PROVISIOND_TOKEN: await h.token('drydock', 'operator'), PROVISIOND_POLL_INTERVAL: '0.5' };
  // Drydock's design: nodes named its own way, matched to provisiond's by boot MAC.
  const nodes = [
    { name: 'cab1-r720-01', boot_mac: '52:54:00:DD:00:01', image: 'demo' },
    { name: 'cab1-r720-02', boot_mac: '52-54-00-dd-00-02', image: 'demo' },
    { name: 'cab1-r720-03', boot_mac: '52:54:00:dd:00:03', image: 'demo' },
  ];
  const all = nodes.map((n) => n.name);

  t.test('OOB driver: set_node_boot(pxe), power_cycle_node, interrogate_oob; a dead BMC is that node\'s failure', async (t) => {
    const { code, out, stderr } = await drydock(
      {
        driver: 'oob',
        nodes,
        steps: [
          { action: 'validate_oob_services' },
          { action: 'set_node_boot', nodes: all.slice(0, 2) },
          { action: 'power_cycle_node', nodes: all.slice(0, 2) },
          { action: 'interrogate_oob', nodes: all },
          { action: 'power_off_node', nodes: all.slice(0, 1) },
        ],
      },
      env,
    );
    t.equal(code, 0, stderr);
    t.ok(out.oob_type_support, "the driver takes nodes whose oob_type is 'provisiond'");
    t.same(out.supported_actions.sort(), ['config_node_pxe', 'interrogate_oob', 'power_cycle_node', 'power_off_node', 'power_on_node', 'set_node_boot', 'validate_oob_services']);
    const [validate, boot, cycle, interrogate, off] = out.tasks as [DTask, DTask, DTask, DTask, DTask];

    t.match(validate.result, { status: 'success' });
    t.match(validate.result.messages, [{ message: /answers; token drydock \(operator\)/, context_type: 'task' }]);

    t.equal(boot.status, 'complete');
    t.equal(boot.result.status, 'partial_success', 'one BMC up, one down: partial_success');
    t.same(boot.result.successes, ['cab1-r720-01']);
    t.same(boot.result.failures, ['cab1-r720-02']);
    t.equal(boot.subtasks.length, 2, 'one subtask per node');
    t.ok(boot.subtasks.every((s) => s.status === 'complete' && s.action === 'set_node_boot'));
    t.match(messagesOf(boot, 'cab1-r720-01'), [{ message: /Setting node to PXE boot \(provisiond node n0001\)/ }, { message: 'Set bootdev to PXE: provisiond reports "boot device pxe persistent".', error: false, context_type: 'node' }]);
    t.match(sim.bootLog(), /set boot pxe/, 'the BMC was told to boot PXE');
    const dead = messagesOf(boot, 'cab1-r720-02').find((m) => m.error);
    t.match(dead, { message: /^Unable to set bootdev to PXE: ipmitool chassis bootdev .*127\.0\.0\.1:\d+/, context_type: 'node' }, "the dead BMC's node fails with ipmitool's message");
    t.ok(Number.isFinite(Date.parse(dead!.ts)), 'messages carry a timestamp');

    t.equal(cycle.result.status, 'partial_success');
    t.same(cycle.result.successes, ['cab1-r720-01']);
    t.same(cycle.result.failures, ['cab1-r720-02']);
    t.match(messagesOf(cycle, 'cab1-r720-01').at(-1), { message: 'Node power cycle complete.', error: false });
    t.match(messagesOf(cycle, 'cab1-r720-02').at(-1), { message: /^Node failed to power cycle: ipmitool chassis power cycle/, error: true });

    t.equal(interrogate.result.status, 'partial_success');
    t.same(interrogate.result.successes, ['cab1-r720-01']);
    t.same(interrogate.result.failures.sort(), ['cab1-r720-02', 'cab1-r720-03']);
    t.match(messagesOf(interrogate, 'cab1-r720-01'), [{ message: 'provisiond power driver ipmi of n0001 reports power on.' }]);
    t.match(messagesOf(interrogate, 'cab1-r720-03'), [{ message: /no provisiond node has hardware address 52:54:00:dd:00:03/, error: true }]);

    t.equal(off.result.status, 'success');
    t.equal(sim.power(), 'off', 'power_off_node turned the simulated chassis off');
  });

  t.test('node driver: identify_node by MAC, the actions provisiond has no use for, interrogate_node, destroy_node', async (t) => {
    // n0001 allocated and running: destroy_node releases it, which powers it off.
    await reg.updateNode('n0001', { attrs: { 'alloc.owner': 'drydock-site', 'alloc.since': new Date().toISOString() } });
    const on = await h.operator.post('/nodes/n0001/power', { action: 'on' });
    t.equal(on.status, 202);
    for (let i = 0; i < 100 && sim.power() !== 'on'; i++) await new Promise((r) => setTimeout(r, 100));
    t.equal(sim.power(), 'on');

    const { code, out, stderr } = await drydock(
      {
        driver: 'node',
        nodes: [...nodes, { name: 'n0002' }],
        steps: [
          { action: 'validate_node_services' },
          { action: 'identify_node', nodes: [...all, 'n0002'] },
          { action: 'create_network_template' },
          { action: 'apply_node_networking', nodes: all.slice(0, 2) },
          { action: 'interrogate_node', nodes: all.slice(0, 1) },
          { action: 'destroy_node', nodes: all.slice(0, 2) },
          { action: 'deploy_node', nodes: [all[2]!] },
          { action: 'identify_node', nodes: all, design_ref: 'broken' },
        ],
      },
      env,
    );
    t.equal(code, 0, stderr);
    t.ok(['identify_node', 'deploy_node', 'destroy_node', 'configure_hardware', 'apply_node_storage', 'apply_node_platform', 'create_boot_media'].every((a) => out.supported_actions.includes(a)), 'every node action of Drydock is supported');
    const [validate, identify, template, networking, interrogate, destroy, deploy, broken] = out.tasks as [DTask, DTask, DTask, DTask, DTask, DTask, DTask, DTask];
    t.equal(validate.result.status, 'success');

    t.equal(identify.result.status, 'partial_success');
    t.same(identify.result.successes.sort(), ['cab1-r720-01', 'cab1-r720-02', 'n0002'], 'matched by boot MAC (any notation), or by name without one');
    t.same(identify.result.failures, ['cab1-r720-03']);
    t.match(messagesOf(identify, 'cab1-r720-01'), [{ message: 'Node cab1-r720-01 identified as provisiond node n0001 (52:54:00:DD:00:01).', error: false }]);
    t.match(messagesOf(identify, 'cab1-r720-03'), [{ message: 'no provisiond node has hardware address 52:54:00:dd:00:03 (register it: provisiond node add 52:54:00:dd:00:03)', error: true, context_type: 'node' }]);

    t.match(template, { status: 'complete', subtasks: [], result: { status: 'success', messages: [{ message: /^provisiond has no use for create_network_template: /, context_type: 'task' }] } });
    t.same(networking.result.successes.sort(), ['cab1-r720-01', 'cab1-r720-02'], 'a no-op succeeds for every node');
    t.match(messagesOf(networking, 'cab1-r720-02'), [{ message: /^provisiond has no use for apply_node_networking: /, error: false }]);

    t.match(messagesOf(interrogate, 'cab1-r720-01'), [{ message: /^provisiond node n0001: state never seen, verdict RELOAD \(.+\), vnfs demo, booted -, owner drydock-site, power on \(ipmi\)\.$/ }]);

    t.equal(destroy.result.status, 'partial_success');
    t.same(destroy.result.successes, ['cab1-r720-01']);
    t.same(destroy.result.failures, ['cab1-r720-02']);
    t.match(messagesOf(destroy, 'cab1-r720-01'), [{ message: 'Released provisiond node n0001 from drydock-site.' }, { message: /^Node destroyed: powered off/ }]);
    t.match(messagesOf(destroy, 'cab1-r720-02').at(-1), { message: /^Node destroy failed: ipmitool chassis power off/, error: true });
    t.equal(sim.power(), 'off', 'the released node is powered off');
    t.equal((await h.viewer.get('/allocations/n0001')).status, 404, 'and no longer allocated');

    t.equal(deploy.result.status, 'failure', 'deploy_node on a node provisiond does not know');
    t.same(deploy.result.failures, ['cab1-r720-03']);
    t.match(broken, { status: 'complete', subtasks: [], result: { status: 'failure', messages: [{ message: 'cannot find the target nodes: Unable to render effective site design.', error: true, context_type: 'task' }] } }, 'a design that cannot be rendered fails the task, not the driver');
  });

  t.test('settings: a missing token or a bad URL is refused with where it came from, the key and the reason', async (t) => {
    const conf = join(dir, 'drydock.conf');
    writeFileSync(conf, `[DEFAULT]\npoll_interval = 10\n[provisiond]\napi_url = ${h.apiBase}\n`);
    const noToken = await drydock({ driver: 'oob', nodes: [], steps: [] }, { PROVISIOND_DRYDOCK_CONF: conf });
    t.equal(noToken.code, 2);
    t.match(noToken.out.error, `${conf}: [provisiond] token: missing (or token_file, PROVISIOND_TOKEN)`);
    writeFileSync(conf, `[provisiond]\napi_url = ftp://master\ntoken = pvd_x\n`);
    t.match((await drydock({ driver: 'oob', nodes: [], steps: [] }, { PROVISIOND_DRYDOCK_CONF: conf })).out.error, `${conf}: [provisiond] api_url: 'ftp://master' is not an http(s) URL`);
    writeFileSync(conf, `[provisiond]\napi_url = ${h.apiBase}\ntoken = pvd_x\npoll_intervall = 3\n`);
    t.match((await drydock({ driver: 'oob', nodes: [], steps: [] }, { PROVISIOND_DRYDOCK_CONF: conf })).out.error, /\[provisiond\] poll_intervall: unknown key/);

    // From the file, with a viewer token: the driver starts, validate_oob_services says why it cannot work.
    // Drydock's own file, as oslo.config writes it: a key repeated for a list ([plugins] oob_driver).
    writeFileSync(conf, `[DEFAULT]\nleader_grace_period = 300\npoll_interval = 10\n[plugins]\noob_driver = drydock_provisioner.drivers.oob.pyghmi_driver.PyghmiDriver\noob_driver = provisiond_drydock.ProvisiondOobDriver\nnode_driver = provisiond_drydock.ProvisiondNodeDriver\n[provisiond]\napi_url = ${h.apiBase}\ntoken = ${await h.token('ro', 'viewer')}\n`);
    writeFileSync(conf, `${readFileSync(conf, 'utf8')}timeout_identify_node = 2\n[timeouts]\ndrydock_timeout = 3\ndeploy_node = 30\nidentify_node = 7\n`);
    const viewer = await drydock({ driver: 'oob', nodes, steps: [{ action: 'validate_oob_services' }, { action: 'power_on_node', nodes: all.slice(0, 1) }] }, { PROVISIOND_DRYDOCK_CONF: conf });
    t.equal(viewer.code, 0, viewer.stderr);
    t.same(viewer.out.timeouts, { deploy_node: 1800, identify_node: 120, set_node_boot: 180 }, "Drydock's [timeouts] apply (minutes), [provisiond] timeout_<action> over them");
    t.match(viewer.out.tasks[0]!.result, { status: 'failure', messages: [{ message: /token ro has role viewer; Drydock needs operator or admin/, error: true }] });
    t.match(messagesOf(viewer.out.tasks[1]!, 'cab1-r720-01').at(-1), { message: /POST \/nodes\/n0001\/power: 403 /, error: true });

    // The API down: each node fails with the address it tried.
    const down = await drydock({ driver: 'oob', nodes, steps: [{ action: 'interrogate_oob', nodes: all.slice(0, 1) }] }, { ...env, PROVISIOND_API_URL: `http://127.0.0.1:${await freeTcpPort()}` });
    t.match(down.out.tasks[0]!.result, { status: 'failure', failures: ['cab1-r720-01'] });
    t.match(messagesOf(down.out.tasks[0]!, 'cab1-r720-01'), [{ message: /^provisiond API http:\/\/127\.0\.0\.1:\d+\/api\/v1: .*refused/, error: true }]);
  });
}
