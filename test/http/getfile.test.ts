import t from 'tap';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, utimesSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startDaemon, text } from '../lib/daemon.js';

const run = promisify(execFile);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function tempDir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'pvd-http-client-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A GET with the path sent exactly as given (no client-side normalisation of `..` or `%2e`). */
function rawGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('getfile resumes with curl -C - and busybox wget -c; the checksum header is right', async (t) => {
  const h = await startDaemon(t);
  const data = randomBytes(12 * 1024 * 1024 + 17);
  h.write('files/images/blob.bin', data);
  const url = `${h.base}/files/images/blob.bin`;
  const dir = tempDir(t);

  const head = await fetch(url, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.headers.get('content-length'), String(data.length));
  t.equal(head.headers.get('x-checksum-sha256'), sha256(data), 'X-Checksum-Sha256 is the sha256 of the file');
  t.equal(head.headers.get('accept-ranges'), 'bytes');
  t.ok(head.headers.get('etag') && head.headers.get('last-modified'));

  // curl: a first part, then `-C -` continues where the file ends.
  const out = join(dir, 'curl.bin');
  writeFileSync(out, data.subarray(0, 5_000_000));
  const curl = await run('curl', ['-sS', '-C', '-', '-o', out, '-w', '%{http_code} %{size_download}', url]);
  t.equal(curl.stdout, `206 ${data.length - 5_000_000}`, 'curl resumed with a 206 for the rest only');
  t.equal(sha256(readFileSync(out)), sha256(data), 'curl -C - gives the whole file');

  // busybox wget -c, as the node's getfile does.
  const wout = join(dir, 'wget.bin');
  writeFileSync(wout, data.subarray(0, 3_333_333));
  await run('busybox', ['wget', '-q', '-c', '-O', wout, url]);
  t.equal(sha256(readFileSync(wout)), sha256(data), 'busybox wget -c gives the whole file');

  // The digest is computed once per file version, and again after the file changes.
  for (let i = 0; i < 3; i++) await fetch(url, { method: 'HEAD' });
  t.equal(h.daemon.http!.server.checksums.computed, 1, 'hashed once for many requests');
  const changed = Buffer.concat([data.subarray(0, 1000), Buffer.from('changed')]);
  h.write('files/images/blob.bin', changed);
  utimesSync(join(h.statedir, 'files/images/blob.bin'), new Date(), new Date(Date.now() + 5000));
  const again = await fetch(url, { method: 'HEAD' });
  t.equal(again.headers.get('x-checksum-sha256'), sha256(changed), 'a changed file gets its new checksum');
  t.not(again.headers.get('etag'), head.headers.get('etag'), 'and a new ETag');
});

t.test('conditional and range requests', async (t) => {
  const h = await startDaemon(t);
  h.write('files/small.txt', 'hello, node\n');
  const url = `${h.base}/files/small.txt`;
  const first = await fetch(url);
  const etag = first.headers.get('etag')!;
  t.equal(await first.text(), 'hello, node\n');
  t.equal((await fetch(url, { headers: { 'If-None-Match': etag } })).status, 304);
  const part = await fetch(url, { headers: { Range: 'bytes=7-' } });
  t.equal(part.status, 206);
  t.equal(part.headers.get('content-range'), 'bytes 7-11/12');
  t.equal(await part.text(), 'node\n');
  const suffix = await fetch(url, { headers: { Range: 'bytes=-5' } });
  t.equal(await suffix.text(), 'node\n');
  const beyond = await fetch(url, { headers: { Range: 'bytes=100-' } });
  t.equal(beyond.status, 416);
  t.equal(beyond.headers.get('content-range'), 'bytes */12');
  const stale = await fetch(url, { headers: { Range: 'bytes=7-', 'If-Range': '"old"' } });
  t.equal(stale.status, 200, 'If-Range with an old ETag gets the whole file');
  t.equal(await stale.text(), 'hello, node\n');
});

t.test('every traversal variant is refused and nothing outside the trees is served', async (t) => {
  const h = await startDaemon(t, '', { setup: () => {} });
  const secret = 'SECRET-CONFIG-CONTENT';
  h.write('secret.txt', secret);
  h.write('files/.hidden', secret);
  h.write('files/ok.txt', 'fine');
  h.write('vnfs/demo/image.cpio.gz', 'image');
  symlinkSync(join(h.statedir, 'secret.txt'), join(h.statedir, 'files/link-out'));
  symlinkSync('/etc/passwd', join(h.statedir, 'files/passwd'));
  symlinkSync(join(h.statedir, 'files/ok.txt'), join(h.statedir, 'files/link-in'));
  mkdirSync(join(h.statedir, 'files/sub'));
  const variants = [
    '/files/../secret.txt',
    '/files/../provisiond.yaml',
    '/files/%2e%2e/secret.txt',
    '/files/%2E%2E/secret.txt',
    '/files/%2e%2e%2fsecret.txt',
    '/files/..%2fsecret.txt',
    '/files/sub/..%2F..%2Fsecret.txt',
    '/files/vnfs/demo/../../secret.txt',
    '/files/vnfs/..%2f..%2fsecret.txt',
    '/files/..%5csecret.txt',
    '/files/sub/%00',
    '/files/.hidden',
    '/files/%2ehidden',
    '/files/link-out',
    '/files/passwd',
    '/files/var/provisiond.db',
    '/files//etc/passwd',
    '/files/sub',
    '/files/%ff%fe',
    '/files/vnfs/%2e%2e/secret.txt',
    '/files/./ok.txt',
  ];
  for (const path of variants) {
    const res = await rawGet(h.port, path);
    t.ok([400, 403, 404].includes(res.status), `${path} -> ${res.status}`);
    t.notMatch(res.body, /SECRET|root:/, `${path} leaks nothing`);
  }
  t.equal((await text(`${h.base}/files/link-in`)).body, 'fine', 'a symlink inside the tree is followed');
  t.equal((await text(`${h.base}/files/vnfs/demo/image.cpio.gz`)).body, 'image');
  t.equal((await text(`${h.base}/files/ok.txt`)).body, 'fine', 'a path naming no tree is looked up in files/');
  t.equal((await text(`${h.base}/files/files/ok.txt`)).body, 'fine');
});

t.test('a vnfs prefix is served too, and vnfs images carry their sidecar checksum', async (t) => {
  const h = await startDaemon(t, 'vnfs:\n  prefix: /images/\n');
  const image = randomBytes(300_000);
  h.write('vnfs/demo/image.cpio.gz', image);
  h.write('vnfs/demo/image.cpio.gz.sha256', `${sha256(image)}  image.cpio.gz\n`);
  const a = await fetch(`${h.base}/images/vnfs/demo/image.cpio.gz`);
  t.equal(a.status, 200);
  t.equal(sha256(Buffer.from(await a.arrayBuffer())), sha256(image));
  t.equal(a.headers.get('x-checksum-sha256'), sha256(image));
  t.equal(h.daemon.http!.server.checksums.computed, 0, 'the fresh sidecar was used: nothing hashed');
  t.equal((await fetch(`${h.base}/files/vnfs/demo/image.cpio.gz`)).status, 200, '/files/ still answers');
});

t.test('the shipped 00-init getfile, run by busybox sh with busybox wget, downloads the file', async (t) => {
  const h = await startDaemon(t);
  h.write('nodescripts/init/all/00-init', readFileSync('nodescripts/init/all/00-init'), 0o755);
  const image = randomBytes(2 * 1024 * 1024 + 3);
  h.write('vnfs/demo/image.cpio.gz', image);
  h.write('vnfs/demo/image.cpio.gz.sha256', `${sha256(image)}  image.cpio.gz\n`);
  h.write('files/etc/motd', 'welcome to the cluster\n');
  const script = await text(`${h.base}/nodescripts/init?nodeid=52:54:00:77:00:01`);
  t.equal(script.status, 200);
  // The node has busybox alone: a PATH of busybox applets only.
  const node = tempDir(t);
  const bin = join(node, 'bin');
  mkdirSync(bin);
  const applets = (await run('/bin/busybox', ['--list'])).stdout.split('\n').filter(Boolean);
  for (const applet of applets) symlinkSync('/bin/busybox', join(bin, applet));
  const nodeScript = `${script.body}\ncd ${node}\ngetfile vnfs/demo/image.cpio.gz && getfile etc/motd motd && echo GETFILE-OK\n`;
  const res = await run('/bin/busybox', ['sh', '-c', nodeScript], { env: { PATH: bin } });
  t.match(res.stdout, /GETFILE-OK/);
  t.equal(sha256(readFileSync(join(node, 'image.cpio.gz'))), sha256(image), 'the image arrived whole and verified');
  t.equal(readFileSync(join(node, 'motd'), 'utf8'), 'welcome to the cluster\n');
  const missing = await run('/bin/busybox', ['sh', '-c', `${script.body}\ncd ${node}\ngetfile vnfs/demo/nope.img || echo FAILED-AS-EXPECTED\n`], { env: { PATH: bin } });
  t.match(missing.stdout, /FAILED-AS-EXPECTED/);
  t.match(missing.stderr, /the master does not serve it/);
});
