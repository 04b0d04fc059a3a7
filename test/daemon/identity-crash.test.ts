/**
 * A credential handed out is durable (issue 23, "acknowledged means durable"): the init script that
 * carried it was sent after its hash was committed, so kill -9 of provisiond serve right after
 * leaves the node able to check in with it, and the previous boot's still refused.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bearer, initCredential, ServeProcess, testConfig } from '../lib/daemon.js';
import { makeStatedir, writeIn } from '../lib/statedir.js';

const NODE = '52:54:00:aa:23:31';

t.test('credentials survive kill -9: the node checks in with the one its init carried', async (t) => {
  const statedir = makeStatedir(t, {}, { prefix: 'pvd-idk9-', layout: true });
  writeIn(statedir, 'nodescripts/ready/all/10-ok', '#!/bin/sh\necho true\n', 0o755);
  const configPath = join(statedir, 'provisiond.yaml');
  writeFileSync(configPath, testConfig(statedir));
  const first = await ServeProcess.start({ configPath });
  t.teardown(() => first.stop());
  const base = `http://127.0.0.1:${first.port}`;
  const earlier = await initCredential(base, NODE);
  const current = await initCredential(base, NODE);
  // Straight after the script was received: no clean shutdown, no flush.
  first.kill('SIGKILL');
  t.equal(await first.exited, null, 'killed by the signal');

  const second = await ServeProcess.start({ configPath });
  t.teardown(() => second.stop());
  const base2 = `http://127.0.0.1:${second.port}`;
  t.equal((await fetch(`${base2}/nodescripts/ready?nodeid=${NODE}`, bearer(current))).status, 200, 'the credential of the last init works after the crash');
  t.equal((await fetch(`${base2}/nodescripts/ready?nodeid=${NODE}`, bearer(earlier))).status, 403, "the earlier boot's is still refused");
  await second.stop();
});
