/**
 * The daemon's task runner: a reload task waits while the daemon is stopped and started again, is
 * taken over by the new daemon, and completes when the node boots through the real HTTP service
 * (nodescript requests and node events, as the stage-1 and the ready agent make them); its
 * progress reaches the event stream (the admin API's /events) phase by phase.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon/run.js';
import { memoryLogger } from '../../src/log/logger.js';
import type { HubEvent } from '../../src/api/events.js';
import { bearer, initCredential, startDaemon, text } from '../lib/daemon.js';
import { sleep } from '../lib/sleep.js';

const MAC = '52:54:00:41:00:01';
const FIXTURES = resolve(import.meta.dirname, '../power/fixtures');

async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

t.test('restart while a reload waits: the new daemon takes it over and it completes when the node is ready', async (t) => {
  const h = await startDaemon(t);
  const reg = h.daemon.registry;
  await reg.addNode({ name: 'r0001', nodeid: MAC, vnfs: 'demo', attrs: { 'power.driver': 'exec', 'power.dir': join(FIXTURES, 'exec'), 'power.statefile': join(h.statedir, 'r0001.power') } });
  const runner = h.daemon.tasks;
  const { task } = await runner.submit({ action: 'reload', params: { nodes: ['r0001'], timeout: 60, interval: 0.05 }, createdBy: 'vcl' });
  await until('the power step', async () => (await reg.getTask(task.id))?.nodes[0]?.messages.some((m) => m.message.startsWith('powered on to boot pxe')) ?? false);
  t.equal(readFileSync(join(h.statedir, 'r0001.power'), 'utf8').trim(), 'on');
  await h.daemon.close();

  const again = await Daemon.start({ config: loadConfig(h.configPath), log: memoryLogger(), watch: false });
  t.teardown(() => again.close());
  const phases: string[] = [];
  again.events.subscribe((e: HubEvent) => {
    if (e.kind !== 'task' || e.data.id !== task.id) return;
    const p = (e.data.phases as Record<string, { phase: string | null }>).r0001?.phase;
    if (p && phases.at(-1) !== p) phases.push(p);
  });
  await until('the take-over', async () => (await again.registry.getTask(task.id))?.messages.some((m) => m.message.startsWith('taken over by')) ?? false);
  // The node boots: the stage-1 asks for init (which hands it this boot's credential), reports its
  // address and its image fetch, then the ready agent checks in, each with the credential.
  const base = `http://127.0.0.1:${again.http!.server.port}`;
  const cred = await initCredential(base, MAC);
  await sleep(120);
  const step = async (path: string) => {
    t.equal((await text(`${base}${path}`, bearer(cred))).status, 200, path);
    await sleep(120);
  };
  await step(`/nodes/${MAC}/events?stage=dhcp&msg=eth0%2010.0.0.41%2F24`);
  await step(`/nodes/${MAC}/events?stage=getfile&msg=vnfs%2Fdemo%2Fimage.cpio.gz`);
  await step(`/nodescripts/ready?nodeid=${MAC}`);
  const done = await again.tasks.wait(task.id, { timeoutMs: 20_000 });
  t.equal(done.status, 'complete');
  t.equal(done.result, 'success');
  t.match(done.messages.map((m) => m.message), [/^started by /, /^taken over by .* its runner .* is gone$/]);
  await until('the last event', () => phases.at(-1) === 'ready', 5000);
  // The stage-1 reports dhcp once it holds the credential, after init: a phase never goes back.
  t.same(phases, ['init', 'getfile', 'ready'], 'the phases the new daemon saw, in order, on the event stream');
});
