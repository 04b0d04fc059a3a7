/**
 * deploy_node across a crash of provisiond: the Drydock node driver (real python3, through the
 * stand-in of Drydock's orchestrator) waits for its deploy task while `provisiond serve` is killed
 * with SIGKILL and started again; the task, accepted before the crash, is taken over by the new
 * daemon, the driver keeps asking for it, and Drydock's task ends success once the node is ready on
 * the new VNFS. The node is simulated over the real HTTP service, as the stage-1 and the ready agent
 * make their requests; its power is the exec driver's fixture (a state file).
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freeTcpPort } from '../power/lib/ipmi-sim.js';
import { bearer, initCredential, ServeProcess, testConfig, text } from '../lib/daemon.js';
import { gate, missingCommands } from '../lib/gate.js';
import { CLI } from '../lib/paths.js';
import { sleep } from '../lib/sleep.js';
import { makeStatedir } from '../lib/statedir.js';
import { drydock, messagesOf, type DTask } from './lib/drydock.js';
import { POWERED } from '../../src/tasks/actions/reload.js';

const MAC = '52:54:00:dd:09:01';
const FIXTURES = resolve(import.meta.dirname, '../power/fixtures/exec');
const run = promisify(execFile);

if (gate(t, missingCommands(['python3']).length ? 'python3 not installed' : null)) {
  t.test('kill -9 of provisiond while deploy_node waits: the deploy is taken over and Drydock\'s task succeeds', async (t) => {
    const statedir = makeStatedir(t, {}, { prefix: 'pvd-ddk9-', layout: true });
    for (const v of ['demo', 'compute-v2']) mkdirSync(join(statedir, `vnfs/${v}/rootfs`), { recursive: true });
    const apiPort = await freeTcpPort();
    const configPath = join(statedir, 'provisiond.yaml');
    writeFileSync(configPath, testConfig(statedir, `api:\n  port: ${apiPort}\n`));
    const cli = async (...args: string[]) => (await run(process.execPath, [CLI, '--config', configPath, ...args])).stdout.trim();
    await cli('node', 'add', MAC, 'k0001', '--vnfs', 'demo');
    await cli('node', 'set', 'power.driver', 'exec', 'k0001');
    await cli('node', 'set', 'power.dir', FIXTURES, 'k0001');
    await cli('node', 'set', 'power.statefile', join(statedir, 'k0001.power'), 'k0001');
    const token = await cli('token', 'create', 'drydock', '--role', 'operator');

    let daemon = await ServeProcess.start({ configPath });
    t.teardown(() => daemon.stop());
    const deploying = drydock(
      { driver: 'node', nodes: [{ name: 'rack9-node1', boot_mac: MAC, image: 'compute-v2' }], steps: [{ action: 'deploy_node', nodes: ['rack9-node1'] }] },
      { PROVISIOND_API_URL: `http://127.0.0.1:${apiPort}/api/v1`, PROVISIOND_TOKEN: token, PROVISIOND_POLL_INTERVAL: '0.5' },
      { timeoutMs: 120_000 },
    );
    // The deploy has powered the node on (the fixture's state file): the daemon dies then.
    const power = join(statedir, 'k0001.power');
    for (let i = 0; i < 300; i++) {
      if (readFileSync(power, { encoding: 'utf8', flag: 'a+' }).trim() === 'on') break;
      await sleep(100);
    }
    t.equal(readFileSync(power, 'utf8').trim(), 'on', 'the deploy powered the node on');
    // ... and recorded it: killed between the BMC's answer and that record, the daemon could not
    // know whether the power call happened, and the taker would end the node's deploy instead.
    const recorded = async () => {
      const res = await fetch(`http://127.0.0.1:${apiPort}/api/v1/tasks?limit=5`, { headers: { authorization: `Bearer ${token}` } });
      const { items } = (await res.json()) as { items: Array<{ action: string; nodes: Array<{ messages: Array<{ message: string }> }> }> };
      return items.some((x) => x.action === 'deploy' && x.nodes.some((n) => n.messages.some((m) => POWERED.test(m.message))));
    };
    for (let i = 0; i < 100 && !(await recorded()); i++) await sleep(100);
    t.ok(await recorded(), 'the deploy task records the node powered on');
    daemon.kill('SIGKILL');
    t.equal(await daemon.exited, null, 'provisiond killed by SIGKILL');
    await sleep(1500);
    daemon = await ServeProcess.start({ configPath });

    // The node boots compute-v2: init (its credential), its address, the image fetch, ready.
    const base = `http://127.0.0.1:${daemon.port}`;
    const cred = await initCredential(base, MAC);
    for (const path of [`/nodes/${MAC}/events?stage=dhcp&msg=eth0%2010.0.0.91%2F24`, `/nodes/${MAC}/events?stage=getfile&msg=vnfs%2Fcompute-v2%2Fimage.cpio.gz`, `/nodescripts/ready?nodeid=${MAC}`]) {
      await sleep(300);
      t.equal((await text(`${base}${path}`, bearer(cred))).status, 200, path.replace(/\?.*/, ''));
    }
    const { code, out, stderr } = await deploying;
    t.equal(code, 0, stderr);
    const deploy = out.tasks[0] as DTask;
    const msgs = messagesOf(deploy, 'rack9-node1').map((m) => m.message);
    t.match(deploy.result, { status: 'success', successes: ['rack9-node1'], failures: [] }, `Drydock's task succeeded: ${msgs.join(' | ')}`);
    t.match(msgs.at(-1), /^Node deployed: ready on compute-v2/);
    t.ok(msgs.some((m) => /phase ready\.$/.test(m)), 'the ready phase reached Drydock');
  });
}
