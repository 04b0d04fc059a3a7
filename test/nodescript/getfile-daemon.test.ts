/**
 * The shipped 00-init's getfile against the daemon's real HTTP service (/files/ and a configured
 * vnfs.prefix), run by busybox sh with busybox applets only, resuming a partial download.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon } from '../lib/daemon.js';
import { gate } from '../lib/gate.js';
import { makeStatedir } from '../lib/statedir.js';

const BUSYBOX = ['/usr/bin/busybox', '/bin/busybox'].find((p) => existsSync(p));
if (!gate(t, BUSYBOX ? null : 'busybox not installed (Debian package busybox)')) process.exit(0);

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function runSh(dir: string, script: string): Promise<{ stdout: string; stderr: string }> {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  for (const a of ['sh', 'wget', 'sha256sum', 'cut', 'tr', 'wc', 'mv', 'rm', 'sleep', 'cat', 'timeout']) if (!existsSync(join(bin, a))) symlinkSync(BUSYBOX!, join(bin, a));
  writeFileSync(join(dir, 'node.sh'), script);
  return new Promise((resolve) => execFile(join(bin, 'sh'), [join(dir, 'node.sh')], { env: { PATH: bin }, timeout: 60_000 }, (_e, stdout, stderr) => resolve({ stdout, stderr })));
}

t.test('getfile against the daemon: /files/ and vnfs.prefix, resume, sha256 sidecar', async (t) => {
  const h = await startDaemon(t, 'vnfs:\n  prefix: images\n');
  h.write('nodescripts/init/all/00-init', readFileSync('nodescripts/init/all/00-init'), 0o755);
  const image = randomBytes(4 * 1024 * 1024 + 11);
  h.write('vnfs/demo/image.cpio.gz', image);
  h.write('vnfs/demo/image.cpio.gz.sha256', `${sha256(image)}  image.cpio.gz\n`);
  const res = await fetch(`${h.base}/nodescripts/init?nodeid=52:54:00:77:00:02`);
  t.equal(res.status, 200);
  const script = await res.text();
  t.match(script, new RegExp(`VNFSMASTER='127\\.0\\.0\\.1:${h.port}'\\nVNFSPREFIX='images'`), 'the node is told the daemon and the prefix');
  const node = makeStatedir(t, {});
  // A node that already holds the first 1.5 MiB (an interrupted boot): getfile resumes it.
  writeFileSync(join(node, 'image.cpio.gz.part'), image.subarray(0, 1536 * 1024));
  const r = await runSh(node, `${script}\ncd ${node}\ngetfile vnfs/demo/image.cpio.gz && echo GETFILE-OK\n`);
  t.match(r.stdout, /GETFILE-OK/, r.stderr);
  t.ok(readFileSync(join(node, 'image.cpio.gz')).equals(image), 'the resumed image is whole and verified');
  t.notOk(existsSync(join(node, 'image.cpio.gz.part')));
});
