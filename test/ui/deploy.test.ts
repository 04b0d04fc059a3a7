/**
 * Deploy from the web UI (issue 21) in headless Chromium against a real daemon: an operator picks
 * another VNFS on a node's page and deploys it (the node's VNFS is set at once and the node is
 * power-cycled; the task line follows it), then deploys one on two nodes selected in the table; a
 * viewer is offered no deploy.
 */
import t from 'tap';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startApiDaemon } from '../api/lib/harness.js';
import { browser, loggedIn } from './lib.js';

const FIXTURES = resolve(import.meta.dirname, '../power/fixtures/exec');

t.test('deploy from the node page and from the nodes table', async (t) => {
  const b = await browser(t);
  if (!b) return;
  const h = await startApiDaemon(t, '', {
    setup: (dir) => {
      for (const v of ['tiny', 'rocky9']) {
        mkdirSync(join(dir, `vnfs/${v}/rootfs/etc`), { recursive: true });
        writeFileSync(join(dir, `vnfs/${v}/config`), `description: ${v}\n`);
        writeFileSync(join(dir, `vnfs/${v}/rootfs/etc/hostname`), `${v}\n`);
      }
    },
  });
  for (const [name, nodeid] of [['d01', '52:54:00:dd:00:01'], ['d02', '52:54:00:dd:00:02'], ['d03', '52:54:00:dd:00:03']] as const) {
    await h.daemon.registry.addNode({ name, nodeid, group: 'compute', vnfs: 'tiny' });
  }
  await h.daemon.registry.updateGroup('compute', { attrs: { 'power.driver': 'exec', 'power.dir': FIXTURES } });
  for (const name of ['d01', 'd02', 'd03']) await h.daemon.registry.updateNode(name, { attrs: { 'power.statefile': join(h.statedir, `power-${name}`) } });
  const power = (name: string) => readFileSync(join(h.statedir, `power-${name}`), 'utf8').trim();

  const operator = await loggedIn(b, h.apiBase, h.operator.token!);
  const { page } = operator;
  await page.goto(`${h.apiBase}/ui/#/node/d01`);
  const pick = page.locator('#deploy-vnfs');
  await page.waitForSelector('#deploy-vnfs option[value=rocky9]', { state: 'attached' });
  t.equal(await pick.inputValue(), 'tiny', "the node's own VNFS is preselected");
  await pick.selectOption('rocky9');
  await page.click('button[data-action=deploy]');
  await page.waitForSelector('#task-phases[data-task]');
  t.match(await page.locator('#task-phases').innerText(), /deploy/, 'the task line follows the deploy');
  const id = (await page.locator('#task-phases').getAttribute('data-task'))!;
  const task = (await h.viewer.get(`/tasks/${id}`)).body as { action: string; nodes: Array<{ node: string }> };
  t.equal(task.action, 'deploy');
  t.same(task.nodes.map((n) => n.node), ['d01'], 'of this node');
  t.equal((await h.daemon.registry.getNode('d01'))?.vnfs, 'rocky9', 'the VNFS is set at once');
  for (let i = 0; i < 50 && power('d01') !== 'on'; i++) await new Promise((r) => setTimeout(r, 100));
  t.equal(power('d01'), 'on', 'and the node was power-cycled to boot it');
  await h.operator.post(`/tasks/${id}/cancel`, {});

  // Two nodes selected in the table, one deploy task for both.
  await page.goto(`${h.apiBase}/ui/#/nodes`);
  await page.waitForSelector('#nodes tr[data-node=d03]');
  await page.check('input[aria-label="select d02"]');
  await page.check('input[aria-label="select d03"]');
  await page.waitForSelector('#actions #deploy-vnfs option[value=rocky9]', { state: 'attached' });
  await page.locator('#actions #deploy-vnfs').selectOption('rocky9');
  await page.click('#actions button[data-action=deploy]');
  await page.waitForSelector('#task-line code[data-task]');
  const bulk = (await page.locator('#task-line code[data-task]').getAttribute('data-task'))!;
  const bt = (await h.viewer.get(`/tasks/${bulk}`)).body as { action: string; nodes: Array<{ node: string }> };
  t.equal(bt.action, 'deploy');
  t.same(bt.nodes.map((n) => n.node).sort(), ['d02', 'd03'], 'one deploy task for the selected nodes');
  t.same([(await h.daemon.registry.getNode('d02'))?.vnfs, (await h.daemon.registry.getNode('d03'))?.vnfs], ['rocky9', 'rocky9']);
  await h.operator.post(`/tasks/${bulk}/cancel`, {});

  const viewer = await loggedIn(b, h.apiBase, h.viewer.token!);
  await viewer.page.goto(`${h.apiBase}/ui/#/node/d01`);
  await viewer.page.waitForSelector('#power-state');
  t.equal(await viewer.page.locator('button[data-action=deploy]').count(), 0, 'a viewer: no deploy');
  t.same([...operator.errors, ...viewer.errors], [], 'no script error and no failed request');
});
