/**
 * The node resources of the admin API against a real daemon, through node's fetch: list with
 * patterns and paging, get, create, PATCH (refused with node set's own messages), delete, import,
 * rename, replace, timeline and verdict; validation errors name the field, unknown nodes are 404.
 */
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { apiDaemon } from './resources-helpers.js';

const mac = (i: number) => `52:54:00:10:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`.toUpperCase();

t.test('create, get, patch, rename, replace and delete a node; names and MACs both name it', async (t) => {
  const h = await apiDaemon(t, '', (dir) => {
    mkdirSync(`${dir}/vnfs/demo`, { recursive: true });
    writeFileSync(`${dir}/vnfs/demo/config`, 'description: the demo\n');
  });
  const created = await h.call('POST', '/nodes', { nodeid: '52-54-00-aa-00-01', name: 'n0001', group: 'compute', vnfs: 'demo', ipaddr: '10.1.1.51' });
  t.equal(created.status, 201, created.text);
  t.equal(created.headers.get('location'), '/api/v1/nodes/n0001');
  t.match(created.body, { name: 'n0001', nodeid: '52:54:00:AA:00:01', group: 'compute', vnfs: 'demo', ipaddr: '10.1.1.51', enabled: true, sources: { group: 'node', vnfs: 'node', enabled: 'default' }, verdict: { verdict: 'RELOAD', reason: 'never seen' }, leaseAddress: null });

  const unnamed = await h.call('POST', '/nodes', { nodeid: '52:54:00:aa:00:02' });
  t.equal(unnamed.status, 201);
  t.equal(unnamed.body.name, 'n0000', 'the next free name of defaults.nodeName');
  t.equal((await h.call('POST', '/nodes', { nodeid: '52:54:00:aa:00:02', name: 'other' })).status, 409, 'a hardware address registered twice');
  const badMac = await h.call('POST', '/nodes', { nodeid: 'not-a-mac' });
  t.match(badMac, { status: 422, body: { error: { code: 'invalid', field: 'body.nodeid', message: /invalid hardware address "not-a-mac"/ } } });
  t.match(await h.call('POST', '/nodes', { nodeid: '52:54:00:aa:00:03', vnfs: 'nosuch' }), { status: 422, body: { error: { field: 'body.vnfs', message: /no vnfs named "nosuch"/ } } });
  t.match(await h.call('POST', '/nodes', { nodeid: '52:54:00:aa:00:03', colour: 'red' }), { status: 400, body: { error: { field: 'body.colour', message: /unknown field "colour"/ } } });
  t.match(await h.call('POST', '/nodes', { name: 'x' }), { status: 400, body: { error: { field: 'body.nodeid' } } });

  const byMac = await h.call('GET', '/nodes/52-54-00-AA-00-01');
  t.equal(byMac.status, 200);
  t.equal(byMac.body.name, 'n0001', 'a hardware address names the node too');
  t.match(await h.call('GET', '/nodes/nosuch'), { status: 404, body: { error: { code: 'not_found', message: /no node named "nosuch"/ } } });
  t.equal((await h.call('GET', '/nodes/52:54:00:ff:ff:ff')).status, 404);

  const patched = await h.call('PATCH', '/nodes/n0001', { enabled: false, debug: 3, boot: 'disk', desc: 'rack 12', attrs: { rack: '12', 'power.password': 'hunter2' } });
  t.equal(patched.status, 200, patched.text);
  t.match(patched.body, { enabled: false, debug: 3, boot: 'local', desc: 'rack 12', attrs: { rack: '12', 'power.password': '****' }, sources: { enabled: 'node', 'attrs.rack': 'node' } });
  const unset = await h.call('PATCH', '/nodes/52:54:00:AA:00:01', { enabled: null, attrs: { rack: null } });
  t.equal(unset.body.enabled, true, 'null unsets: the default applies again');
  t.equal(unset.body.sources.enabled, 'default');
  t.notOk('rack' in unset.body.attrs);
  t.match(await h.call('PATCH', '/nodes/n0001', { attrs: { vnfs: 'demo' } }), { status: 422, body: { error: { field: 'body.attrs.vnfs' } } });
  t.match(await h.call('PATCH', '/nodes/n0001', { name: 'x' }), { status: 400, body: { error: { field: 'body.name' } } });
  t.equal((await h.call('PATCH', '/nodes/nosuch', { debug: 1 })).status, 404);

  const renamed = await h.call('POST', '/nodes/n0001/rename', { to: 'c0001' });
  t.match(renamed, { status: 200, body: { name: 'c0001', nodeid: '52:54:00:AA:00:01', debug: 3 } });
  t.match(await h.call('POST', '/nodes/c0001/rename', { to: 'bad name' }), { status: 422, body: { error: { field: 'body.to' } } });
  t.equal((await h.call('POST', '/nodes/n0000/rename', { to: 'c0001' })).status, 409, 'the name is taken');
  const replaced = await h.call('POST', '/nodes/c0001/replace', { nodeid: '52:54:00:bb:00:01' });
  t.match(replaced, { status: 200, body: { name: 'c0001', nodeid: '52:54:00:BB:00:01', debug: 3 } });
  t.match(await h.call('POST', '/nodes/c0001/replace', { nodeid: 'zz' }), { status: 422, body: { error: { field: 'body.nodeid' } } });

  t.equal((await h.call('DELETE', '/nodes/52:54:00:bb:00:01')).status, 204);
  t.equal((await h.call('GET', '/nodes/c0001')).status, 404);
  t.equal((await h.call('DELETE', '/nodes/c0001')).status, 404);

  const audit = await h.call('GET', '/audit?limit=20');
  t.ok(audit.body.items.some((e: { action: string; target: string }) => e.action === 'nodes.patch' && e.target === 'n0001'), 'changes are audited');
  t.equal((await h.as('operator')('PATCH', '/nodes/n0000', { debug: 1 })).status, 403, 'changing a node takes admin');
  t.equal((await h.as('viewer')('GET', '/nodes/n0000')).status, 200, 'reading one takes viewer');
});

t.test('PATCH refuses what node set refuses, with the same message', async (t) => {
  const h = await apiDaemon(t);
  await h.daemon.registry.addNode({ name: 'n0001', nodeid: '52:54:00:aa:01:01' });
  const cases: Array<[string, string | number | boolean]> = [
    ['enabled', 'maybe'],
    ['debug', 'high'],
    ['debug', -1],
    ['boot', 'floppy'],
    ['vnfs', 'nosuch'],
    ['ipaddr', '10.1.1.300'],
    ['group', 'bad group'],
  ];
  for (const [key, value] of cases) {
    const api = await h.call('PATCH', '/nodes/n0001', { [key]: value });
    const cli = await h.cli(['node', 'set', key, String(value), 'n0001']);
    t.not(cli.code, 0, `node set ${key} ${value} fails`);
    t.equal(api.status, 422, `${key} ${value}: ${api.text}`);
    t.equal(api.body.error.field, `body.${key}`);
    // The CLI prints `provisiond: MESSAGE`; the dir of a missing VNFS is the same statedir.
    t.equal(`provisiond: ${api.body.error.message}\n`, cli.stderr.replace(/, or use --force/, ', or use --force'), `${key} ${value}: the message of node set`);
  }
  const attr = await h.call('PATCH', '/nodes/n0001', { attrs: { '9rack': '1' } });
  const cli = await h.cli(['node', 'set', '9rack', '1', 'n0001']);
  t.equal(attr.body.error.field, 'body.attrs.9rack');
  t.equal(`provisiond: ${attr.body.error.message}\n`, cli.stderr);
  const force = await h.call('PATCH', '/nodes/n0001', { vnfs: 'later', force: true });
  t.equal(force.body.vnfs, 'later', 'force accepts a VNFS not there yet, as node set --force');
});

t.test('list: patterns, group, state, verdict, and a cursor that walks 1,200 nodes once each', async (t) => {
  const h = await apiDaemon(t);
  const nodes = Array.from({ length: 1200 }, (_, i) => ({ name: `n${String(i + 1).padStart(4, '0')}`, nodeid: mac(i + 1), group: i < 100 ? 'gpu' : 'compute', vnfs: 'demo' }));
  await h.daemon.registry.importNodes(nodes);
  await h.daemon.registry.recordContact(mac(5), 'ready', '10.0.0.5');
  await h.daemon.registry.recordContact(mac(6), 'init', '10.0.0.6');
  await h.daemon.registry.flush();

  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const r = await h.call('GET', `/nodes?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    t.equal(r.status, 200);
    t.ok(r.body.items.length <= 500);
    seen.push(...r.body.items.map((n: { name: string }) => n.name));
    cursor = r.body.next;
    pages++;
  } while (cursor !== null && pages < 10);
  t.equal(pages, 3, '500 + 500 + 200');
  t.equal(seen.length, 1200);
  t.equal(new Set(seen).size, 1200, 'each node once');
  t.same(seen, nodes.map((n) => n.name), 'in name order');
  t.equal((await h.call('GET', '/nodes')).body.items.length, 500, 'default limit 500');
  t.match(await h.call('GET', '/nodes?limit=5001'), { status: 400, body: { error: { field: 'query.limit' } } });
  t.match(await h.call('GET', '/nodes?limit=0'), { status: 400, body: { error: { field: 'query.limit' } } });
  t.match(await h.call('GET', '/nodes?colour=red'), { status: 400, body: { error: { field: 'query.colour' } } });
  t.match(await h.call('GET', '/nodes?verdict=MAYBE'), { status: 400, body: { error: { field: 'query.verdict' } } });

  const names = async (q: string) => (await h.call('GET', `/nodes?${q}`)).body.items.map((n: { name: string }) => n.name);
  t.same(await names('pattern=n00[01-03],n1199,' + encodeURIComponent(mac(1200).toLowerCase())), ['n0001', 'n0002', 'n0003', 'n1199', 'n1200']);
  t.same(await names(`pattern=${encodeURIComponent('n001*')}&limit=3`), ['n0010', 'n0011', 'n0012']);
  t.same(await names('pattern=nosuch'), [], 'a pattern naming nothing matches nothing');
  t.equal((await h.call('GET', '/nodes?group=gpu&limit=5000')).body.items.length, 100);
  t.same(await names('group=gpu&pattern=n0099,n0100,n0101'), ['n0099', 'n0100']);
  t.same(await names('state=ready,init'), ['n0005', 'n0006']);
  t.same(await names('verdict=READY'), ['n0005'], 'ready and heard from just now');
  const reload = await h.call('GET', '/nodes?verdict=RELOAD&limit=2');
  t.same(reload.body.items.map((n: { name: string }) => n.name), ['n0001', 'n0002']);
  t.equal(reload.body.next, 'n0002');
  t.same(await names('verdict=RELOAD&limit=2&cursor=n0004'), ['n0006', 'n0007'], 'the verdict filter pages too');

  const one = (await h.call('GET', '/nodes?pattern=n0005')).body.items[0];
  t.match(one, { name: 'n0005', nodeid: mac(5), group: 'gpu', state: 'ready', lastaddr: '10.0.0.5', timedOut: false, currentImage: null, bootVnfs: null });
  const cli = JSON.parse((await h.cli(['node', 'list', '--json', 'n0005'])).stdout)[0];
  t.same(Object.keys(one).sort(), Object.keys(cli).sort(), 'the fields of node list --json');
  t.same({ ...one, contact: null, lastcontact: null }, { ...cli, contact: null, lastcontact: null });
});

t.test('import, timeline and verdict', async (t) => {
  const h = await apiDaemon(t);
  const csv = 'nodeid,name,group,attrs.rack\n52:54:00:cc:00:01,c01,compute,1\n52:54:00:cc:00:02,,compute,2\n';
  const imported = await h.call('POST', '/nodes/import', { format: 'csv', text: csv });
  t.match(imported, { status: 201, body: { imported: 2 } });
  t.match((await h.call('GET', '/nodes/c01')).body, { group: 'compute', attrs: { rack: '1' } });
  t.equal((await h.call('GET', '/nodes/52:54:00:cc:00:02')).body.name, 'n0000', 'an empty name gets the next free one');
  const ethers = await h.call('POST', '/nodes/import', { format: 'ethers', text: '52:54:00:cc:00:03 e03\n52:54:00:cc:00:04 e04\n' });
  t.match(ethers, { status: 201, body: { imported: 2 } });
  const dup = await h.call('POST', '/nodes/import', { format: 'ethers', text: '52:54:00:cc:00:05 e05\n52:54:00:cc:00:01 e06\n' });
  t.match(dup, { status: 422, body: { error: { field: 'body.text', message: /^body\.text:2: .*\(nothing imported\)$/ } } });
  t.equal((await h.call('GET', '/nodes/e05')).status, 404, 'all or none');
  t.match(await h.call('POST', '/nodes/import', { format: 'csv', text: '52:54:00:cc:00:07 e07\n' }), { status: 422, body: { error: { field: 'body.text', message: /not CSV/ } } });
  t.match(await h.call('POST', '/nodes/import', { format: 'xml', text: 'x' }), { status: 400, body: { error: { field: 'body.format' } } });
  t.match(await h.call('POST', '/nodes/import', { format: 'csv', text: 'nodeid,colour\n52:54:00:cc:00:08,red\n' }), { status: 422, body: { error: { message: /body\.text:1: unknown column "colour"/ } } });

  const t0 = Date.now() - 60_000;
  const step = (dt: number, source: 'dhcp' | 'http' | 'node', stage: string, ok = true) => h.daemon.registry.addEvent({ time: t0 + dt, nodeid: '52:54:00:CC:00:01', source, stage, msg: null, ok });
  await step(0, 'dhcp', 'discover');
  await step(1000, 'dhcp', 'ack');
  await step(2000, 'http', 'http vnfs/demo/image.cpio.gz');
  await step(3000, 'node', 'ready');
  await h.daemon.registry.recordContact('52:54:00:CC:00:01', 'ready', '10.0.0.1');
  await h.daemon.registry.flush();
  const tl = await h.call('GET', '/nodes/c01/timeline');
  t.equal(tl.status, 200);
  t.same(tl.body.events.map((e: { stage: string }) => e.stage), ['discover', 'ack', 'http vnfs/demo/image.cpio.gz', 'ready']);
  t.equal(tl.body.node, 'c01');
  t.same((await h.call('GET', '/nodes/c01/timeline?limit=2')).body.events.map((e: { stage: string }) => e.stage), ['http vnfs/demo/image.cpio.gz', 'ready'], 'the last steps');
  t.same((await h.call('GET', `/nodes/c01/timeline?since=${t0 + 1500}`)).body.events.length, 2, 'since, in ms');
  t.same((await h.call('GET', '/nodes/c01/timeline?since=2h')).body.events.length, 4, 'since, as the CLI takes it');
  t.match(await h.call('GET', '/nodes/c01/timeline?since=yesterdayish'), { status: 400, body: { error: { field: 'query.since' } } });
  const stranger = await h.call('GET', '/nodes/52:54:00:dd:00:01/timeline');
  t.match(stranger, { status: 200, body: { node: null, nodeid: '52:54:00:DD:00:01', events: [] } }, 'an unregistered address has a timeline too');
  t.equal((await h.call('GET', '/nodes/nosuch/timeline')).status, 404);

  // c01 is ready, but the timeline shows it fetched vnfs demo while its group gives it none.
  t.match((await h.call('GET', '/nodes/c01/verdict')).body, { node: 'c01', verdict: 'RELOAD', reason: 'no vnfs assigned', power: null });
  await h.call('PATCH', '/nodes/c01', { vnfs: 'other', force: true });
  t.match((await h.call('GET', '/nodes/c01/verdict')).body, { verdict: 'RELOAD', reason: 'running vnfs demo, assigned other' });
  await h.call('PATCH', '/nodes/c01', { vnfs: 'demo', force: true });
  t.match((await h.call('GET', '/nodes/c01/verdict')).body, { verdict: 'READY', reason: null });
  t.match((await h.call('GET', '/nodes/c01')).body.verdict, { verdict: 'READY', reason: null });
  t.match((await h.call('GET', '/nodes/e03/verdict')).body, { verdict: 'RELOAD', reason: 'no vnfs assigned' });
  t.equal((await h.call('GET', '/nodes/nosuch/verdict')).status, 404);
});
