/**
 * The admin API's groups, VNFS, nodescripts (render, plan, lint, modules) and power resources
 * against a real daemon through node's fetch; renders compared with `provisiond script render`
 * for the same node.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiServer } from '../../src/api/server.js';
import { createApi, type ApiContext, type TaskService } from '../../src/api/index.js';
import { EventHub } from '../../src/api/events.js';
import { SessionStore } from '../../src/api/sessions.js';
import { ConsoleHub } from '../../src/api/console-hub.js';
import { silentLogger } from '../../src/log/logger.js';
import type { RegistryStore, TaskRecord } from '../../src/registry/types.js';
import { Pacer } from '../../src/util/pacer.js';
import { apiDaemon } from './resources-helpers.js';

t.test('groups: list, get, PUT, PATCH, DELETE and their nodes', async (t) => {
  const h = await apiDaemon(t);
  await h.daemon.registry.importNodes([
    { name: 'g01', nodeid: '52:54:00:ee:00:01', group: 'gpu' },
    { name: 'g02', nodeid: '52:54:00:ee:00:02', group: 'gpu' },
    { name: 'c01', nodeid: '52:54:00:ee:00:03', group: 'compute' },
  ]);
  const patched = await h.call('PATCH', '/groups/gpu', { debug: 2, enabled: 'no', attrs: { rack: '7', 'power.password': 'x' } });
  t.match(patched, { status: 200, body: { name: 'gpu', debug: 2, enabled: false, attrs: { rack: '7', 'power.password': '****' }, nodes: 2, nodeNames: ['g01', 'g02'] } });
  t.match((await h.call('GET', '/nodes/g01')).body, { debug: 2, enabled: false, sources: { debug: 'group', enabled: 'group', 'attrs.rack': 'group' } }, 'its nodes inherit');
  const list = await h.call('GET', '/groups');
  t.same(list.body.items.map((g: { name: string; nodes: number }) => [g.name, g.nodes]), [['compute', 1], ['gpu', 2]]);
  t.match(await h.call('GET', '/groups/gpu'), { status: 200, body: { debug: 2, nodeNames: ['g01', 'g02'] } });
  t.match(await h.call('GET', '/groups/nosuch'), { status: 404, body: { error: { code: 'not_found' } } });
  t.equal((await h.call('GET', '/groups/nosuch/nodes')).status, 404);

  const put = await h.call('PUT', '/groups/gpu', { boot: 'local', attrs: { rack: '8' } });
  t.match(put, { status: 200, body: { boot: 'local', debug: null, enabled: null, attrs: { rack: '8' } } }, 'PUT unsets what it leaves out');
  t.notOk('power.password' in put.body.attrs);
  const nodes = await h.call('GET', '/groups/gpu/nodes');
  t.same(nodes.body.items.map((n: { name: string; boot: string }) => [n.name, n.boot]), [['g01', 'local'], ['g02', 'local']]);

  for (const [key, value] of [['debug', 'lots'], ['boot', 'floppy'], ['vnfs', 'nosuch']] as const) {
    const api = await h.call('PATCH', '/groups/gpu', { [key]: value });
    const cli = await h.cli(['group', 'set', key, value, 'gpu']);
    t.equal(api.status, 422);
    t.equal(api.body.error.field, `body.${key}`);
    t.equal(`provisiond: ${api.body.error.message}\n`, cli.stderr, `${key}: the message of group set`);
  }
  t.match(await h.call('PATCH', '/groups/gpu', { ipaddr: '10.0.0.1' }), { status: 400, body: { error: { field: 'body.ipaddr' } } });
  t.match(await h.call('PATCH', '/groups/gpu', { attrs: { ipaddr: '10.0.0.1' } }), { status: 422, body: { error: { field: 'body.attrs.ipaddr' } } });
  t.match(await h.call('PATCH', '/groups/bad%20name', { debug: 1 }), { status: 422, body: { error: { field: 'params.group' } } });
  const created = await h.call('PATCH', '/groups/fresh', { desc: 'new' });
  t.match(created, { status: 200, body: { name: 'fresh', desc: 'new', nodes: 0 } }, 'PATCH creates a group, as group set does');

  t.equal((await h.call('DELETE', '/groups/gpu')).status, 204);
  t.match((await h.call('GET', '/groups/gpu')).body, { boot: null, attrs: {}, nodeNames: ['g01', 'g02'] }, 'its nodes keep the group name');
  t.equal((await h.call('DELETE', '/groups/nosuch')).status, 404);
  t.equal((await h.as('viewer')('PATCH', '/groups/gpu', { debug: 1 })).status, 403);
});

t.test('vnfs: list, get with image size, sha256 and build time, clone, delete', async (t) => {
  const image = Buffer.from('not really a cpio, but bytes');
  const sha = createHash('sha256').update(image).digest('hex');
  const h = await apiDaemon(t, '', (dir) => {
    mkdirSync(join(dir, 'vnfs/demo/rootfs/etc'), { recursive: true });
    writeFileSync(join(dir, 'vnfs/demo/config'), 'description: the demo\nkernelArgs: quiet\n');
    writeFileSync(join(dir, 'vnfs/demo/image.cpio.gz'), image);
    writeFileSync(join(dir, 'vnfs/demo/image.cpio.gz.sha256'), `${sha}  image.cpio.gz\n`);
    mkdirSync(join(dir, 'vnfs/bare/rootfs'), { recursive: true });
  });
  await h.daemon.registry.addNode({ name: 'n0001', nodeid: '52:54:00:ab:00:01', vnfs: 'demo' });
  const list = await h.call('GET', '/vnfs');
  t.equal(list.status, 200);
  t.match(list.body.items, [
    { name: 'bare', imageBytes: null, imageBuilt: null, nodes: 0 },
    { name: 'demo', description: 'the demo', imageBytes: image.length, nodes: 1 },
  ]);
  const cliList = JSON.parse((await h.cli(['vnfs', 'list', '--json'])).stdout) as Array<{ name: string; imageBytes: number | null; nodes: number }>;
  t.same(list.body.items.map((v: { name: string; imageBytes: number | null; nodes: number }) => [v.name, v.imageBytes, v.nodes]), cliList.map((v) => [v.name, v.imageBytes, v.nodes]), 'as vnfs list --json');
  const demo = await h.call('GET', '/vnfs/demo');
  t.match(demo, { status: 200, body: { name: 'demo', sha256: sha, imageBytes: image.length, config: { description: 'the demo', kernelArgs: 'quiet', compression: 6 }, configError: null, nodeNames: ['n0001'] } });
  t.ok(Math.abs(demo.body.imageBuilt - Date.now()) < 60_000, 'build time: the image file\'s');
  t.equal((await h.call('GET', '/vnfs/nosuch')).status, 404);
  t.match(await h.call('GET', '/vnfs/bad%20name'), { status: 422, body: { error: { field: 'params.name' } } });

  const clone = await h.call('POST', '/vnfs/demo/clone', { to: 'demo2' });
  t.match(clone, { status: 201, body: { name: 'demo2', description: 'the demo', imageBytes: null } });
  t.equal(clone.headers.get('location'), '/api/v1/vnfs/demo2');
  t.ok(existsSync(join(h.statedir, 'vnfs/demo2/rootfs/etc')), 'the rootfs is copied');
  t.match(await h.call('POST', '/vnfs/demo/clone', { to: 'bare' }), { status: 409, body: { error: { field: 'body.to' } } });
  t.equal((await h.call('POST', '/vnfs/nosuch/clone', { to: 'x' })).status, 404);
  t.match(await h.call('POST', '/vnfs/demo/clone', { to: 'bad/name' }), { status: 422, body: { error: { field: 'body.to' } } });

  t.match(await h.call('DELETE', '/vnfs/demo'), { status: 409, body: { error: { message: /vnfs demo is used by n0001/ } } });
  t.equal((await h.call('DELETE', '/vnfs/demo2')).status, 204);
  t.notOk(existsSync(join(h.statedir, 'vnfs/demo2')));
  t.equal((await h.call('DELETE', '/vnfs/demo?force=true')).status, 204);
  t.equal((await h.call('DELETE', '/vnfs/demo')).status, 404);
  t.equal((await h.as('operator')('DELETE', '/vnfs/bare')).status, 403);
});

t.test('scripts: the render is what script render prints; plan, lint and modules as the CLI', async (t) => {
  const h = await apiDaemon(t, 'log:\n  level: warn\n', (dir) => {
    const w = (rel: string, text: string, mode = 0o755) => {
      mkdirSync(join(dir, rel, '..'), { recursive: true });
      writeFileSync(join(dir, rel), text, { mode });
    };
    w('nodescripts/init/all/10-hello', '#!/bin/sh\necho "echo hello $NODENAME from group $GROUPNAME rack $ATTR_RACK ip $IPADDR"\n');
    w('nodescripts/init/all/20-verbatim', '#!/bin/sh\necho "node side"\n', 0o644);
    w('nodescripts/init/group/gpu/50-fail', '#!/bin/sh\necho "cuda missing" >&2\nexit 3\n');
    // A power command on the master (lint's error), never reached.
    w('nodescripts/init/all/60-power', '#!/bin/sh\nif false; then reboot; fi\necho "echo done"\n');
    w('nodescripts/modules/hello/init/10-mod', '#!/bin/sh\necho "echo module"\n');
  });
  await h.daemon.registry.addNode({ name: 'n0001', nodeid: '52:54:00:ac:00:01', group: 'compute', ipaddr: '10.1.1.51', attrs: { rack: '12' } });
  await h.daemon.registry.addNode({ name: 'g0001', nodeid: '52:54:00:ac:00:02', group: 'gpu' });
  for (const [node, state] of [['n0001', 'init'], ['52-54-00-ac-00-02', 'init'], ['n0001', 'ready']]) {
    const api = await h.call('GET', `/nodes/${node}/scripts/${state}`);
    const cli = await h.cli(['script', 'render', state!, node!]);
    t.equal(api.status, 200);
    t.match(api.headers.get('content-type'), /^text\/x-shellscript/);
    t.equal(api.text, cli.stdout, `${node} ${state}: the same script as script render`);
    t.equal(api.headers.get('x-nodescript-failures'), node === 'n0001' ? '0' : '1');
  }
  t.match((await h.call('GET', '/nodes/n0001/scripts/init')).text, /echo hello n0001 from group compute rack 12 ip 10\.1\.1\.51/);
  t.equal((await h.call('GET', '/nodes/nosuch/scripts/init')).status, 404);
  t.match(await h.call('GET', '/nodes/n0001/scripts/in-it'), { status: 422, body: { error: { field: 'params.state' } } });

  const plan = await h.call('GET', '/nodes/g0001/scripts/init/plan');
  const cliPlan = JSON.parse((await h.cli(['script', 'list', 'init', 'g0001', '--json'])).stdout);
  t.equal(plan.status, 200);
  t.same(plan.body.items, cliPlan, 'the plan of script list --json');
  t.same(plan.body.items.map((e: { name: string; action: string }) => [e.name, e.action]), [['10-hello', 'master'], ['20-verbatim', 'verbatim'], ['50-fail', 'master'], ['60-power', 'master']]);

  const lint = await h.call('GET', '/lint');
  const cliLint = await h.cli(['script', 'lint']);
  t.equal(lint.status, 200);
  t.ok(lint.body.errors >= 1, 'a power command in a master-side script is an error');
  t.ok(lint.body.items.some((f: { file: string; severity: string }) => f.file === 'nodescripts/init/all/60-power' && f.severity === 'error'));
  t.equal(lint.body.items.length, cliLint.stdout.trim().split('\n').length, 'as many findings as script lint prints');
  t.match(cliLint.stderr, `${lint.body.errors} error`);
  t.same((await h.call('GET', '/lint?state=ready')).body, { errors: 0, warnings: 0, items: [] });
  t.match(await h.call('GET', '/lint?state=a%20b'), { status: 422, body: { error: { field: 'query.state' } } });

  const mods = await h.call('GET', '/modules');
  t.same(mods.body.items, JSON.parse((await h.cli(['module', 'list', '--json'])).stdout), 'as module list --json');
  t.match(mods.body.items, [{ name: 'hello', states: ['init'], active: [] }]);
});

t.test('power state now: the driver\'s answer, 409 without a driver, 502 with the driver\'s message', async (t) => {
  const h = await apiDaemon(t, 'power:\n  timeout: 2\n', (dir) => {
    mkdirSync(join(dir, 'bmc-ok'), { recursive: true });
    writeFileSync(join(dir, 'bmc-ok/status'), '#!/bin/sh\necho on\n', { mode: 0o755 });
    writeFileSync(join(dir, 'bmc-ok/on'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    mkdirSync(join(dir, 'bmc-bad'), { recursive: true });
    writeFileSync(join(dir, 'bmc-bad/status'), '#!/bin/sh\necho "BMC 10.0.0.9 does not answer" >&2\nexit 1\n', { mode: 0o755 });
    mkdirSync(join(dir, 'bmc-slow'), { recursive: true });
    writeFileSync(join(dir, 'bmc-slow/status'), '#!/bin/sh\nsleep 30\n', { mode: 0o755 });
  });
  const add = (name: string, n: number, attrs: Record<string, string>) => h.daemon.registry.addNode({ name, nodeid: `52:54:00:ad:00:0${n}`, attrs });
  await add('ok', 1, { 'power.driver': 'exec', 'power.dir': join(h.statedir, 'bmc-ok') });
  await add('bad', 2, { 'power.driver': 'exec', 'power.dir': join(h.statedir, 'bmc-bad') });
  await add('slow', 3, { 'power.driver': 'exec', 'power.dir': join(h.statedir, 'bmc-slow') });
  await add('none', 4, {});
  t.match(await h.as('viewer')('GET', '/nodes/ok/power'), { status: 200, body: { node: 'ok', driver: 'exec', state: 'on' } });
  t.match(await h.call('GET', '/nodes/52:54:00:ad:00:01/power'), { status: 200, body: { node: 'ok' } });
  t.match(await h.call('GET', '/nodes/bad/power'), { status: 502, body: { error: { code: 'driver_failed', message: /BMC 10\.0\.0\.9 does not answer/ } } });
  const t0 = Date.now();
  t.match(await h.call('GET', '/nodes/slow/power'), { status: 502 });
  t.ok(Date.now() - t0 < 10_000, 'bounded by power.timeout');
  t.match(await h.call('GET', '/nodes/none/power'), { status: 409, body: { error: { code: 'no_driver' } } });
  t.equal((await h.call('GET', '/nodes/nosuch/power')).status, 404);
  t.match((await h.call('GET', '/nodes/ok/verdict')).body, { power: 'on', powerError: null });
  t.match((await h.call('GET', '/nodes/bad/verdict')).body, { power: 'unknown', powerError: /does not answer/ });
  // The daemon's task runner powers the node on through the same driver; the task ends complete.
  const started = await h.as('operator')('POST', '/nodes/ok/power', { action: 'on' });
  t.match(started, { status: 202, body: { action: 'power', params: { nodes: ['ok'], action: 'on' } } });
  t.equal(started.headers.get('location'), `/api/v1/tasks/${started.body.id}`);
  let done = started.body;
  for (let i = 0; i < 100 && done.status !== 'complete' && done.status !== 'terminated'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    done = (await h.call('GET', started.headers.get('location')!.slice('/api/v1'.length))).body;
  }
  t.match(done, { status: 'complete', result: 'success' }, 'the task behind the Location completes');
});

/**
 * A stand-in for the task runner that only stores what is submitted in the registry: these tests
 * look at what the routes hand over (parameters, idempotency), not at actions being run, which the
 * real runner's tests and the test above cover.
 */
function storingTasks(registry: RegistryStore): TaskService & { submitted: TaskRecord[] } {
  let n = 0;
  const submitted: TaskRecord[] = [];
  return {
    submitted,
    async submit({ action, params, createdBy, idempotencyKey = null }) {
      const t: TaskRecord = { id: `t${++n}`, action, params, status: 'requested', result: 'incomplete', createdBy, created: Date.now(), started: null, finished: null, progressAt: null, idempotencyKey, runner: null, cancelRequested: null, messages: [], nodes: [] };
      const stored = await registry.putTask(t);
      if (stored.id === t.id) submitted.push(stored);
      return { task: stored, created: stored.id === t.id };
    },
    get: (id) => registry.getTask(id),
    list: (o) => registry.listTasks(o),
    cancel: async (id) => (await registry.getTask(id))!,
  };
}

t.test('power, bootdev, reload and image builds answer 202 with the task and its Location', async (t) => {
  const h = await apiDaemon(t, '', (dir) => mkdirSync(join(dir, 'vnfs/demo/rootfs'), { recursive: true }));
  await h.daemon.registry.importNodes(Array.from({ length: 16 }, (_, i) => ({ name: `n${String(i + 1).padStart(4, '0')}`, nodeid: `52:54:00:af:00:${(i + 1).toString(16).padStart(2, '0')}` })));
  const tasks = storingTasks(h.daemon.registry);
  const ctx: ApiContext = {
    registry: h.daemon.registry,
    config: () => h.daemon.config,
    log: silentLogger(),
    nodescripts: undefined as never,
    tasks,
    events: new EventHub(),
    pacer: new Pacer(),
    sessions: new SessionStore(),
    consoles: new ConsoleHub(silentLogger()),
    startedAt: Date.now(),
    services: () => [],
  };
  const server = new ApiServer(createApi(ctx, { maxBody: 1 << 20 }), { listen: '127.0.0.1', port: 0, tls: null }, silentLogger());
  await server.listen();
  t.teardown(() => server.close());
  const secret = (await import('../../src/registry/tokens.js')).createToken(h.daemon.registry, { name: 'op2', role: 'operator' });
  const op = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${server.url}/api/v1${path}`, { method, headers: { authorization: `Bearer ${(await secret).secret}`, 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, location: res.headers.get('location'), replayed: res.headers.get('idempotent-replayed'), body: (await res.json()) as { id: string; action: string; params: Record<string, unknown>; error?: { field?: string; message: string } } };
  };

  const one = await op('POST', '/nodes/52-54-00-af-00-03/power', { action: 'cycle' });
  t.equal(one.status, 202);
  t.equal(one.location, `/api/v1/tasks/${one.body.id}`);
  t.match(one.body, { action: 'power', status: 'requested', params: { nodes: ['n0003'], action: 'cycle' }, createdBy: 'op2' });
  const got = await fetch(`${server.url}${one.location}`, { headers: { authorization: `Bearer ${(await secret).secret}` } });
  t.equal(got.status, 200, 'the Location answers');

  const many = await op('POST', '/power', { nodes: ['n00[01-08]', 'n0016', '52:54:00:af:00:0c'], action: 'on' });
  t.match(many, { status: 202, body: { action: 'power', params: { nodes: ['n00[01-08]', 'n0016', 'n0012'], action: 'on' } } }, 'patterns handed over, addresses as names');
  t.match(await op('POST', '/power', { nodes: ['n00[01-02]', 'x*'], action: 'on' }), { status: 422, body: { error: { field: 'body.nodes', message: /"x\*" matches no node/ } } });
  t.match(await op('POST', '/power', { nodes: ['n0001'], action: 'explode' }), { status: 400, body: { error: { field: 'body.action' } } });
  t.match(await op('POST', '/power', { nodes: [], action: 'on' }), { status: 400, body: { error: { field: 'body.nodes' } } });
  t.equal((await op('POST', '/nodes/nosuch/power', { action: 'on' })).status, 404);

  const a = await op('POST', '/reload', { nodes: ['n000*'], timeout: 600 }, { 'idempotency-key': 'vcl-42' });
  const b = await op('POST', '/reload', { nodes: ['n000*'], timeout: 600 }, { 'idempotency-key': 'vcl-42' });
  t.match(a, { status: 202, body: { action: 'reload', params: { nodes: ['n000*'], timeout: 600 } } });
  t.equal(b.body.id, a.body.id, 'a retried POST gets the task of its first try');
  t.equal(b.replayed, 'true');
  t.match(await op('POST', '/nodes/n0001/reload', {}), { status: 202, body: { action: 'reload', params: { nodes: ['n0001'] } } });
  t.match(await op('POST', '/nodes/n0001/reload', { timeout: -1 }), { status: 400, body: { error: { field: 'body.timeout' } } });
  t.match(await op('POST', '/nodes/n0002/bootdev', { device: 'pxe', persistent: true }), { status: 202, body: { action: 'bootdev', params: { nodes: ['n0002'], device: 'pxe', persistent: true } } });
  t.match(await op('POST', '/bootdev', { nodes: ['n0001', 'n0002'], device: 'disk' }), { status: 202, body: { action: 'bootdev', params: { nodes: ['n0001', 'n0002'], device: 'disk', persistent: false } } });
  t.match(await op('POST', '/bootdev', { nodes: ['n0001'], device: 'floppy' }), { status: 400, body: { error: { field: 'body.device' } } });

  const img = await op('POST', '/vnfs/demo/image');
  t.equal(img.status, 403, 'an image build takes admin');
  const admin = (await import('../../src/registry/tokens.js')).createToken(h.daemon.registry, { name: 'adm2', role: 'admin' });
  const res = await fetch(`${server.url}/api/v1/vnfs/demo/image`, { method: 'POST', headers: { authorization: `Bearer ${(await admin).secret}` } });
  t.equal(res.status, 202);
  t.match(await res.json(), { action: 'vnfs-image', params: { vnfs: 'demo' } });
  t.equal((await fetch(`${server.url}/api/v1/vnfs/nosuch/image`, { method: 'POST', headers: { authorization: `Bearer ${(await admin).secret}` } })).status, 404);
  t.equal(tasks.submitted.length, 7, 'every 202 is one task submitted; the refused and the replayed none');
});
