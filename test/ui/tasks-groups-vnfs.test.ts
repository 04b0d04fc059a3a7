/**
 * The web UI's tasks, groups and VNFS pages in headless Chromium against a real daemon: an admin
 * builds a VNFS image from the VNFS page and follows the task to its page (complete, success) and
 * the image size appears; an operator cancels a reload that waits for its node and the task page
 * shows it terminated; an admin edits a group's settings (the API's check refuses a bad value with
 * its message, a good one is saved in the registry); a viewer is offered none of these buttons.
 */
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startApiDaemon } from '../api/lib/harness.js';
import { browser, loggedIn, shot } from './lib.js';

const FIXTURES = resolve(import.meta.dirname, '../power/fixtures/exec');

t.test('tasks, groups and VNFS pages', async (t) => {
  const b = await browser(t);
  if (!b) return;
  const h = await startApiDaemon(t, '', {
    setup: (dir) => {
      mkdirSync(join(dir, 'vnfs/tiny/rootfs/etc'), { recursive: true });
      writeFileSync(join(dir, 'vnfs/tiny/config'), 'description: a tiny capsule\n');
      writeFileSync(join(dir, 'vnfs/tiny/rootfs/etc/hostname'), 'tiny\n');
    },
  });
  for (const [name, nodeid] of [['c01', '52:54:00:cc:00:01'], ['c02', '52:54:00:cc:00:02']] as const) await h.daemon.registry.addNode({ name, nodeid, group: 'compute', vnfs: 'tiny' });
  await h.daemon.registry.updateGroup('compute', { desc: 'cpu nodes', attrs: { 'power.driver': 'exec', 'power.dir': FIXTURES } });
  for (const name of ['c01', 'c02']) await h.daemon.registry.updateNode(name, { attrs: { 'power.statefile': join(h.statedir, `power-${name}`) } });

  const admin = await loggedIn(b, h.apiBase, h.admin.token!);
  const { page } = admin;

  // VNFS: not built, then built from the page, followed on the task's page.
  await page.click('a[data-nav=vnfs]');
  const row = page.locator('#vnfs tr[data-vnfs=tiny]');
  await row.waitFor();
  t.match(await row.innerText(), /tiny\s+a tiny capsule\s+not built/, 'the VNFS page lists the capsule, not built yet, with its node count');
  t.match(await row.locator('td').nth(4).innerText(), '2');
  await row.locator('button[data-action=build]').click();
  await page.click('#vnfs-status a');
  await page.waitForSelector('#task-head .badge:text("success")', { timeout: 60_000 });
  t.match(await page.locator('#task-head').innerText(), /vnfs-image\s+tiny/, 'the task page names the action and the VNFS');
  await shot(page, 'task');
  await page.click('a[data-nav=vnfs]');
  await page.waitForSelector('#vnfs tr[data-vnfs=tiny] td[data-field=image]:not(:text("not built"))');
  t.match(await page.locator('#vnfs tr[data-vnfs=tiny] td[data-field=image]').innerText(), /\d+(\.\d)? (B|KiB|MiB)/, 'its image size appears');
  await shot(page, 'vnfs');

  // Groups: counts and settings; a bad value is refused with the API's message, a good one saved.
  await page.click('a[data-nav=groups]');
  const g = page.locator('#groups tr[data-group=compute]');
  await g.waitFor();
  t.match(await g.innerText(), /compute\s+2\s+default\s+default\s+default\s+default\s+cpu nodes/, 'the group, its node count and settings (default where unset)');
  await g.locator('button[data-action=edit]').click();
  await g.locator('input[name=debug]').fill('lots');
  await g.locator('button[data-action=save]').click();
  await page.waitForSelector('#groups-status.error');
  t.match(await page.locator('#groups-status').innerText(), /compute: .*debug/i, 'a bad value: the API\'s refusal, naming the setting');
  await g.locator('input[name=debug]').fill('2');
  await g.locator('button[data-action=save]').click();
  await page.waitForSelector('#groups-status:text("saved")');
  t.equal((await h.daemon.registry.getGroup('compute'))?.debug, 2, 'saved in the registry');
  t.match(await page.locator('#groups tr[data-group=compute] td[data-setting=debug]').innerText(), '2', 'and shown');
  await shot(page, 'groups');

  // Tasks: a reload waits for a node that never boots; the operator cancels it from its page.
  const operator = await loggedIn(b, h.apiBase, h.operator.token!);
  const reload = await h.operator.post('/nodes/c01/reload', {});
  t.equal(reload.status, 202);
  const id = (reload.body as { id: string }).id;
  await operator.page.click('a[data-nav=tasks]');
  await operator.page.waitForSelector(`#tasks tr[data-task="${id}"]`);
  t.match(await operator.page.locator(`#tasks tr[data-task="${id}"]`).innerText(), /reload/, 'the task list shows the reload');
  await shot(operator.page, 'tasks');
  await operator.page.click(`#tasks tr[data-task="${id}"] a`);
  await operator.page.waitForSelector('#task-nodes tr[data-node=c01]');
  t.match(((await h.viewer.get(`/tasks/${id}`)).body as { status: string }).status, /^(queued|running|requested)$/, 'the reload waits for its node');
  await operator.page.click('#cancel');
  await operator.page.waitForSelector('#task-head .badge:text("failure"), #task-head .badge:text("terminated"), #task-head .badge:text("incomplete")', { timeout: 30_000 });
  const after = (await h.viewer.get(`/tasks/${id}`)).body as { status: string };
  t.equal(after.status, 'terminated', 'cancelled: the task is terminated');
  t.notOk(await operator.page.locator('#cancel').count(), 'no cancel button on a finished task');

  // A viewer is offered none of the changes.
  const viewer = await loggedIn(b, h.apiBase, h.viewer.token!);
  await viewer.page.goto(`${h.apiBase}/ui/#/groups`);
  await viewer.page.locator('#groups tr[data-group=compute]').waitFor();
  t.equal(await viewer.page.locator('button[data-action=edit]').count(), 0, 'a viewer: no Edit');
  await viewer.page.goto(`${h.apiBase}/ui/#/vnfs`);
  await viewer.page.locator('#vnfs tr[data-vnfs=tiny]').waitFor();
  t.equal(await viewer.page.locator('button[data-action=build]').count(), 0, 'a viewer: no Build image');
  await viewer.page.goto(`${h.apiBase}/ui/#/task/${id}`);
  await viewer.page.locator('#task-nodes tr[data-node=c01]').waitFor();
  t.equal(await viewer.page.locator('#cancel').count(), 0, 'a viewer: no Cancel');

  t.same([...admin.errors, ...operator.errors, ...viewer.errors].filter((e) => !/^422 .*\/groups\/compute$/.test(e)), [], 'no script error and no failed request (but the refused group value)');
});
