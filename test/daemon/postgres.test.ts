/**
 * The daemon with its registry in PostgreSQL: a node's boot over HTTP (iPXE script, init
 * nodescript, timeline events, ready check-in) against a real PostgreSQL (test/lib/postgres.ts),
 * and what it recorded is in the database once answered.
 */
import t from 'tap';
import { silentLogger } from '../../src/log/logger.js';
import { PgRegistry } from '../../src/registry/postgres/registry.js';
import { startDaemon, text } from '../lib/daemon.js';
import { postgresMissing, startPostgres } from '../lib/postgres.js';

const MAC = '52:54:00:aa:05:18';

t.test('provisiond serve with database: postgres://: init, events and ready land in PostgreSQL', { skip: postgresMissing() }, async (t) => {
  const pg = await startPostgres(t);
  const url = await pg.createDatabase(t, 'serve');
  const h = await startDaemon(t, `database: "${url}"\n`);
  h.write('nodescripts/init/all/10-hello', '#!/bin/sh\necho "echo hello from $NODENAME"\n', 0o755);
  await h.daemon.registry.addNode({ name: 'n0518', nodeid: MAC, vnfs: 'demo' });

  const ipxe = await text(`${h.base}/boot/${MAC}.ipxe`);
  t.match(ipxe.body, /provisiond\.nodeid=52:54:00:AA:05:18/, 'the iPXE script names the node');
  const init = await text(`${h.base}/nodescripts/init?nodeid=${MAC}`);
  t.equal(init.status, 200);
  t.match(init.body, /hello from n0518/, 'the init nodescript runs with the node from PostgreSQL');
  // What the node does after init presents the credential the script handed it (node identity),
  // issued and checked through PostgreSQL.
  const credential = /^PROVISIOND_CREDENTIAL=([0-9a-f]{64})/m.exec(init.body)?.[1];
  t.ok(credential, 'the init script carries the node credential');
  const auth = { headers: { authorization: `Bearer ${credential}` } };
  t.equal((await text(`${h.base}/nodes/${MAC}/events?stage=kernel&msg=other`)).status, 401, 'an event without it is refused');
  const ev = await text(`${h.base}/nodes/${MAC}/events?stage=kernel&msg=up`, auth);
  t.equal(ev.status, 200);
  const ready = await text(`${h.base}/nodescripts/ready?nodeid=${MAC}`, auth);
  t.equal(ready.status, 200, 'the ready check-in is answered');

  const other = await PgRegistry.open({ url, logger: silentLogger() });
  t.teardown(() => other.close());
  t.match(await other.getNode('n0518'), { state: 'ready', lastaddr: '127.0.0.1' }, 'the check-in is committed in PostgreSQL once answered');
  await h.daemon.registry.flush();
  const stages = (await other.listEvents(MAC)).map((e) => e.stage);
  t.ok(stages.includes('ipxe-script') && stages.includes('kernel'), `the timeline is in PostgreSQL (${stages.join(', ')})`);
});
