/**
 * Protected files (issue 23): nodefiles/<NODE>/ only to that node, groupfiles/<GROUP>/ only to a
 * node of that group, security.protect globs only to a node; each with its credential. The real
 * node fetches with the shipped 00-init's getfile (busybox wget); the attacker is 127.0.0.2.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { promisify } from 'node:util';
import { startDaemon, type Harness } from '../lib/daemon.js';

const run = promisify(execFile);
const NODE = '52:54:00:aa:23:11';
const OTHER = '52:54:00:aa:23:12';

function get(h: Harness, path: string, credential?: string, from = '127.0.0.1'): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = credential ? { Authorization: `Bearer ${credential}` } : {};
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: h.port, path, headers, localAddress: from, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const credentialOf = (script: string): string => /^PROVISIOND_CREDENTIAL=([0-9a-f]{64});/m.exec(script)![1]!;

t.test('protected files: each node gets its own and its group\'s, with its credential, and nothing else', async (t) => {
  const h = await startDaemon(t, 'security:\n  verifySource: off\n  protect:\n    - files/keys/**\n');
  h.write('nodescripts/init/all/00-init', readFileSync('nodescripts/init/all/00-init'), 0o755);
  h.write('nodefiles/n0001/munge.key', 'munge secret of n0001\n', 0o600);
  h.write('nodefiles/n0002/munge.key', 'munge secret of n0002\n', 0o600);
  h.write('groupfiles/compute/ldap.secret', 'bind password of compute\n', 0o600);
  h.write('files/keys/site/host.key', 'site host key\n', 0o600);
  h.write('files/motd', 'public\n', 0o644);
  await h.daemon.registry.addNode({ name: 'n0001', nodeid: NODE, group: 'compute' });
  await h.daemon.registry.addNode({ name: 'n0002', nodeid: OTHER, group: 'login' });
  const script = await (await fetch(`${h.base}/nodescripts/init?nodeid=${NODE}`)).text();
  const mine = credentialOf(script);
  const others = credentialOf(await (await fetch(`${h.base}/nodescripts/init?nodeid=${OTHER}`)).text());

  // The real node: the shipped getfile (busybox wget) sends the credential it got with the script.
  const dir = mkdtempSync(join(tmpdir(), 'pvd-getfile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const node = `${script}\ncd ${dir} && getfile nodefiles/n0001/munge.key && getfile groupfiles/compute/ldap.secret && getfile keys/site/host.key && getfile motd`;
  // busybox applets only, as on the node.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const a of ['sh', 'wget', 'sha256sum', 'cut', 'tr', 'wc', 'mv', 'rm', 'sleep', 'cat', 'timeout']) symlinkSync('/bin/busybox', join(bin, a));
  const out = await run(join(bin, 'sh'), ['-c', node], { env: { PATH: bin, GETFILE_RETRIES: '1' } }).catch((e: { stderr: string; code: number }) => e);
  t.equal((out as { code?: number }).code ?? 0, 0, `the node fetched its files: ${(out as { stderr: string }).stderr}`);
  t.equal(readFileSync(join(dir, 'munge.key'), 'utf8'), 'munge secret of n0001\n');
  t.equal(readFileSync(join(dir, 'ldap.secret'), 'utf8'), 'bind password of compute\n', "its group's file");
  t.equal(readFileSync(join(dir, 'host.key'), 'utf8'), 'site host key\n', 'a file under a security.protect glob');

  const cases: [string, string | undefined, number][] = [
    ['/files/nodefiles/n0001/munge.key', undefined, 401],
    ['/files/nodefiles/n0001/munge.key', 'f'.repeat(64), 403],
    ['/files/nodefiles/n0001/munge.key', others, 403],
    ['/files/groupfiles/compute/ldap.secret', others, 403],
    ['/files/groupfiles/compute/ldap.secret', undefined, 401],
    ['/files/keys/site/host.key', undefined, 401],
    ['/files/nodefiles/n0002/munge.key', mine, 403],
  ];
  for (const [path, credential, status] of cases) {
    const res = await get(h, path, credential, '127.0.0.2');
    t.equal(res.status, status, `${path} ${credential === undefined ? 'without a credential' : credential === mine || credential === others ? "with another node's credential" : 'with a wrong one'}: ${status}`);
    t.notMatch(res.body, /munge secret|bind password|site host key/, 'and nothing of the file');
  }
  t.equal((await get(h, '/files/motd', undefined, '127.0.0.2')).status, 200, 'public files stay public');
  t.equal((await get(h, '/files/nodefiles/n0002/munge.key', others, '127.0.0.2')).status, 200, 'n0002 gets its own file');
  await h.daemon.registry.flush();
  const seen = (await h.daemon.registry.listEvents(NODE.toUpperCase())).filter((e) => e.stage === 'refused').map((e) => e.msg);
  t.ok(seen.some((m) => /getfile nodefiles\/n0001\/munge\.key from 127\.0\.0\.2: asked by n0002/.test(m ?? '')), "the attempt on n0001's file is in its timeline");
});
