/**
 * `provisiond script diff --server URL` between two real daemons, each with its own nodescripts
 * tree: the same tree is no difference (exit 0); a script only on one side, on the other, a changed
 * content, a changed mode, a folder only there and a link pointing elsewhere are each one line
 * (exit 1); a `.git` folder is not compared. Trouble (no token, a refused token, a server that does
 * not answer) is one line and exit 2. The endpoint it reads, `GET /api/v1/nodescripts`, is checked
 * against its OpenAPI schema by the validating client.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { chmodSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startApiDaemon } from '../api/lib/harness.js';
import { addFiles, makeStatedir } from '../lib/statedir.js';
import { runCli } from './node-harness.js';

const TREE = {
  'nodescripts/init/all/00-hostname': '#!/bin/sh\necho "echo $NODENAME > /etc/hostname"\n',
  'nodescripts/init/all/10-net': '#!/bin/sh\necho "ip link set eth0 up"\n',
  'nodescripts/init/all/20-motd': { content: '#!/bin/sh\necho welcome > /etc/motd\n', mode: 0o644 },
  'nodescripts/ready/all/90-ready': '#!/bin/sh\necho "echo ready"\n',
  'nodescripts/init/all/30-common': { link: '../../common/30-common' },
  'nodescripts/common/30-common': '#!/bin/sh\necho "echo common"\n',
} as const;

t.test('script diff --server between two daemons', async (t) => {
  const a = await startApiDaemon(t, '', { setup: (dir) => addFiles(dir, TREE) });
  const b = await startApiDaemon(t, '', { setup: (dir) => addFiles(dir, TREE) });
  const work = makeStatedir(t, {}, { prefix: 'pvd-sdiff-' });
  const tokenFile = join(work, 'token');
  writeFileSync(tokenFile, `${await b.token('drift', 'viewer')}\n`);
  const there = new URL(b.apiBase).host;
  const diff = (...args: string[]) => runCli(['--config', a.configPath, 'script', 'diff', '--server', b.apiBase, ...args]);

  const same = await diff('--token-file', tokenFile);
  t.equal(same.code, 0, `the same tree: exit 0 (${same.err})`);
  t.equal(same.out, 'no differences\n');

  // The API answer itself, validated against the document.
  const tree = await b.viewer.get('/nodescripts');
  t.equal(tree.status, 200);
  const items = (tree.body as { items: Array<{ path: string; type: string; mode: string; sha256: string | null; target: string | null }> }).items;
  t.match(items.find((e) => e.path === 'init/all/00-hostname'), { type: 'file', mode: '0755', sha256: createHash('sha256').update(TREE['nodescripts/init/all/00-hostname']).digest('hex') });
  t.match(items.find((e) => e.path === 'init/all/30-common'), { type: 'link', target: '../../common/30-common', sha256: null });
  t.match(items.find((e) => e.path === 'init/all'), { type: 'dir' });

  // Drift: A and B are edited apart.
  addFiles(a.statedir, {
    'nodescripts/init/all/40-mounts': '#!/bin/sh\necho "mount -a"\n',
    'nodescripts/init/all/00-hostname': '#!/bin/sh\necho "hostname $NODENAME"\n',
    'nodescripts/.git/HEAD': { content: 'ref: refs/heads/main\n', mode: 0o644 },
    'nodescripts/init/all/90-old~': 'an editor leftover\n',
  });
  addFiles(b.statedir, {
    'nodescripts/ready/all/50-gpu': '#!/bin/sh\necho "nvidia-smi"\n',
    'nodescripts/init/group/gpu/10-driver': '#!/bin/sh\necho "modprobe nvidia"\n',
    'nodescripts/common/31-other': '#!/bin/sh\necho "echo other"\n',
  });
  chmodSync(join(b.statedir, 'nodescripts/init/all/10-net'), 0o644);
  rmSync(join(b.statedir, 'nodescripts/init/all/30-common'));
  symlinkSync('../../common/31-other', join(b.statedir, 'nodescripts/init/all/30-common'));

  const drift = await diff('--token-file', tokenFile);
  t.equal(drift.code, 1, `different trees: exit 1 (${drift.err})`);
  const lines = drift.out.trimEnd().split('\n');
  const hashOf = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);
  t.same(lines, [
    'Only in nodescripts/common (' + there + '): 31-other',
    `Files nodescripts/init/all/00-hostname differ: sha256 ${hashOf('#!/bin/sh\necho "hostname $NODENAME"\n')} (here), ${hashOf(TREE['nodescripts/init/all/00-hostname'])} (${there})`,
    `Mode of nodescripts/init/all/10-net differs: 0755 (here), 0644 (${there})`,
    `Links nodescripts/init/all/30-common differ: -> ../../common/30-common (here), -> ../../common/31-other (${there})`,
    'Only in nodescripts/init/all (here): 40-mounts',
    `Only in nodescripts/init (${there}): group/`,
    `Only in nodescripts/ready/all (${there}): 50-gpu`,
    `7 differences: 1 only in here, 3 only in ${there}, 2 changed, 1 mode changed`,
  ]);
  t.notMatch(drift.out, /\.git|90-old~/, 'dotfiles and leftovers are not compared');

  const json = await diff('--token-file', tokenFile, '--json');
  t.equal(json.code, 1);
  const parsed = JSON.parse(json.out) as { server: string; differences: Array<{ path: string; change: string }> };
  t.same(
    parsed.differences.map((d) => [d.path, d.change]),
    [
      ['common/31-other', 'only-there'],
      ['init/all/00-hostname', 'content'],
      ['init/all/10-net', 'mode'],
      ['init/all/30-common', 'content'],
      ['init/all/40-mounts', 'only-here'],
      ['init/group', 'only-there'],
      ['ready/all/50-gpu', 'only-there'],
    ],
    '--json: the same differences',
  );

  // The token from the environment, as the adapters take it.
  process.env.PROVISIOND_TOKEN = await b.token('drift-env', 'viewer');
  t.teardown(() => delete process.env.PROVISIOND_TOKEN);
  t.equal((await diff()).code, 1, '$PROVISIOND_TOKEN is used without --token-file');
  delete process.env.PROVISIOND_TOKEN;

  // Trouble: exit 2 and one line saying what.
  const none = await diff();
  t.equal(none.code, 2, 'no token: exit 2');
  t.match(none.err, /^provisiond: script diff: no API token for the other server: --token-file FILE/);
  writeFileSync(tokenFile, 'pvd_not-a-token\n');
  const refused = await diff('--token-file', tokenFile);
  t.equal(refused.code, 2, 'a refused token: exit 2');
  t.match(refused.err, /^provisiond: script diff: http:\/\/127\.0\.0\.1:\d+\/api\/v1\/nodescripts: 401 /);
  const away = await runCli(['--config', a.configPath, 'script', 'diff', '--server', 'http://127.0.0.1:1', '--token-file', tokenFile]);
  t.equal(away.code, 2, 'a server that does not answer: exit 2');
  t.match(away.err, /^provisiond: script diff: cannot reach http:\/\/127\.0\.0\.1:1: /);
  const bad = await runCli(['--config', a.configPath, 'script', 'diff', '--server', 'rack7', '--token-file', tokenFile]);
  t.equal(bad.code, 2);
  t.match(bad.err, /--server "rack7": expected http:\/\/HOST:PORT/);
});
