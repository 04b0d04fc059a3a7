/**
 * Two daemons on one PostgreSQL (each with its own statedir and HTTP port, as two servers): a
 * change made with the CLI (on the master's shell of A) or through A's admin API is in force on B
 * within 1 s, seen where a node would see it: the iPXE script B hands the node. B learns it by
 * LISTEN/NOTIFY (its registry cache), not by asking the database for every request.
 */
import t from 'tap';
import { startApiDaemon } from '../api/lib/harness.js';
import { runCli } from '../cli/node-harness.js';
import { startDaemon, text } from '../lib/daemon.js';
import { postgresMissing, startPostgres } from '../lib/postgres.js';

const MAC = '52:54:00:aa:19:01';
const LOCAL = /set to boot local/;

/** Polls `url` until its body matches `re` (at most `ms`); the ms it took, or null. */
async function until(url: string, re: RegExp, ms = 1000): Promise<number | null> {
  const t0 = performance.now();
  for (let i = 0; i < 500 && performance.now() - t0 < ms; i++) {
    if (re.test((await text(url)).body)) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 5));
  }
  return re.test((await text(url)).body) ? performance.now() - t0 : null;
}

t.test('a change on one server is in force on the other within 1 s', { skip: postgresMissing() }, async (t) => {
  const pg = await startPostgres(t);
  const url = await pg.createDatabase(t, 'multi');
  const a = await startApiDaemon(t, `database: "${url}"\n`);
  const b = await startDaemon(t, `database: "${url}"\n`);
  const ipxeB = `${b.base}/boot/${MAC}.ipxe`;
  const cli = (...args: string[]) => runCli(['--config', a.configPath, ...args]);

  t.equal((await cli('node', 'add', MAC, 'n1901', '--group', 'rack1')).code, 0, 'node add on A (CLI)');
  let ms = await until(ipxeB, /provisiond\.nodeid=52:54:00:AA:19:01/);
  t.ok(ms !== null, `B's iPXE script names the new node (${ms?.toFixed(0)} ms)`);

  t.equal((await cli('node', 'set', 'boot', 'local', 'n1901')).code, 0, 'node set boot local on A (CLI)');
  ms = await until(ipxeB, LOCAL);
  t.ok(ms !== null, `B sends it to its local disk within 1 s (${ms?.toFixed(0)} ms)`);

  const patch = await fetch(`${a.apiBase}/api/v1/nodes/n1901`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${await a.token('ops', 'admin')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ boot: null }),
  });
  t.equal(patch.status, 200, "A's API: the node inherits boot again");
  ms = await until(ipxeB, /^(?![\s\S]*set to boot local)/);
  t.ok(ms !== null, `B boots it over the network again within 1 s (${ms?.toFixed(0)} ms)`);

  t.equal((await cli('group', 'set', 'boot', 'local', 'rack1')).code, 0, 'group set boot local on A (CLI)');
  ms = await until(ipxeB, LOCAL);
  t.ok(ms !== null, `B applies the group's setting within 1 s (${ms?.toFixed(0)} ms)`);

  t.equal((await cli('node', 'delete', 'n1901', '--yes')).code, 0, 'node delete on A (CLI)');
  const t0 = performance.now();
  while (performance.now() - t0 < 1000 && (await b.daemon.registry.getNode('n1901')) !== null) await new Promise((r) => setTimeout(r, 5));
  t.equal(await b.daemon.registry.getNode('n1901'), null, `B's registry no longer has the node within 1 s (${(performance.now() - t0).toFixed(0)} ms)`);
});
