/** `provisiond group ...`: settings nodes inherit, listed and shown with their source. */
import t from 'tap';
import { cliEnv } from './node-harness.js';

t.test('group set, show, list, nodelist, unset, delete', async (t) => {
  const env = cliEnv(t);
  const reg = env.registry();
  for (let i = 1; i <= 3; i++) await reg.addNode({ name: `n000${i}`, nodeid: `52:54:00:00:04:0${i}`, group: i < 3 ? 'compute' : null });
  t.match(await env.run(['group', 'set', 'vnfs', 'rocky9', 'compute', '--force']), { code: 0, out: 'set vnfs on group compute\n' });
  await env.run(['group', 'set', 'power.driver', 'ipmi', 'compute']);
  await env.run(['group', 'set', 'power.password', 'hunter2', 'compute']);
  await env.run(['group', 'set', 'debug', '2', 'compute']);
  t.match(await reg.getGroup('compute'), { vnfs: 'rocky9', debug: 2, attrs: { 'power.driver': 'ipmi', 'power.password': 'hunter2' } });
  t.equal((await reg.resolve((await reg.getNode('n0001'))!, { group: 'cluster', vnfs: '', enabled: true, debug: 0 })).vnfs, 'rocky9', 'nodes inherit it');

  const show = await env.run(['group', 'show', 'compute']);
  t.match(show.out, /^compute\n {2}vnfs\s+rocky9\s+\(group\)\n/);
  t.match(show.out, /\n {2}enabled\s+yes\s+\(default\)\n/);
  t.match(show.out, /\n {2}power\.password\s+\*\*\*\*\s+\(group\)\n/);
  t.match(show.out, /\n {2}nodes\s+2: n0001, n0002\n$/);

  const list = (await env.run(['group', 'list'])).out.trimEnd().split('\n').map((l) => l.split('\t'));
  t.same(list, [
    ['cluster', '1', '-', '-', '-', '-', '-', '-'],
    ['compute', '2', 'rocky9', '-', '2', '-', 'power.driver=ipmi power.password=****', '-'],
  ], 'groups named only by nodes (the default group) are listed too');
  for (const r of [show, await env.run(['group', 'list', '--json']), await env.run(['group', 'show', '--json', 'compute'])]) t.notMatch(r.out, /hunter2/);

  t.equal((await env.run(['group', 'nodelist', 'compute'])).out, 'n0001\nn0002\n');
  t.equal((await env.run(['group', 'nodelist', 'cluster'])).out, 'n0003\n');
  t.match(await env.run(['group', 'nodelist', 'nope']), { code: 1, err: 'provisiond: no group named "nope" (no settings and no nodes)\n' });

  await env.run(['group', 'unset', 'power.password', 'compute']);
  await env.run(['group', 'unset', 'vnfs', 'compute']);
  t.match(await reg.getGroup('compute'), { vnfs: null, attrs: { 'power.driver': 'ipmi' } });
  t.notOk('power.password' in (await reg.getGroup('compute'))!.attrs);
  t.match(await env.run(['group', 'set', 'ipaddr', '10.0.0.1', 'compute']), { code: 1, err: /ipaddr is a node setting/ });
  t.match(await env.run(['group', 'set', 'enabled', 'perhaps', 'compute']), { code: 1, err: /invalid enabled/ });
  t.match(await env.run(['group', 'delete', 'compute']), { code: 0 });
  t.equal(await reg.getGroup('compute'), null);
  t.equal((await reg.getNode('n0001'))?.group, 'compute', 'its nodes keep the group name');
});
