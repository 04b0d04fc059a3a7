/**
 * The shipped 00-init, rendered by the engine, run by busybox sh with busybox applets only (as on a
 * node's initramfs), against a small HTTP server in this test that honours Range requests like the
 * daemon's /files/ endpoint (the daemon's own service is tested against getfile in test/http).
 */
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createNodescriptEngine } from '../../src/nodescript/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { gate } from '../lib/gate.js';
import { makeStatedir } from '../lib/statedir.js';
import { collect, master, node } from './helpers.js';

const BUSYBOX = ['/usr/bin/busybox', '/bin/busybox'].find((p) => existsSync(p));
if (!gate(t, BUSYBOX ? null : 'busybox not installed (Debian package busybox)')) process.exit(0);

interface Served {
  server: Server;
  port: number;
  requests: Array<{ url: string; range?: string }>;
  /** When set, the next response to this path is cut after that many bytes. */
  cutOnce: Map<string, number>;
}

async function serve(t: Test, files: Map<string, Buffer>): Promise<Served> {
  const requests: Served['requests'] = [];
  const cutOnce = new Map<string, number>();
  const server = createServer((req: IncomingMessage, res) => {
    const url = req.url ?? '';
    requests.push({ url, range: req.headers.range });
    const body = files.get(url);
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) {
      start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
    } else {
      res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
    }
    const cut = cutOnce.get(url);
    if (cut !== undefined) {
      cutOnce.delete(url);
      res.write(body.subarray(start, start + cut), () => res.destroy());
      return;
    }
    res.end(body.subarray(start));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  server.on('connection', (s) => t.teardown(() => s.destroy()));
  return { server, port: (server.address() as AddressInfo).port, requests, cutOnce };
}

/** A bin dir of busybox applets only: the node has nothing else. */
function busyboxBin(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  for (const a of ['sh', 'wget', 'sha256sum', 'cut', 'tr', 'wc', 'mv', 'rm', 'sleep', 'cat', 'cmp', 'ls', 'timeout', 'mkdir']) symlinkSync(BUSYBOX!, join(bin, a));
  return bin;
}

/** Renders the init script for a node whose master is the test server, appends `tail`, runs it with busybox sh. */
async function runNode(t: Test, port: number, tail: string, over: { debug?: number; enabled?: boolean; prefix?: string; env?: Record<string, string> } = {}) {
  const dir = makeStatedir(t, {});
  mkdirSync(join(dir, 'nodescripts/init/all'), { recursive: true });
  copyFileSync('nodescripts/init/all/00-init', join(dir, 'nodescripts/init/all/00-init'));
  const e = createNodescriptEngine({ statedir: dir, logger: silentLogger() });
  t.teardown(() => e.close());
  const script = await collect(
    e.render(node({ debug: over.debug ?? 0, enabled: over.enabled ?? true }), master(dir, { vnfsMaster: `127.0.0.1:${port}`, vnfsPrefix: over.prefix ?? 'files' })),
  );
  const work = join(dir, 'node');
  mkdirSync(work);
  writeFileSync(join(dir, 'node.sh'), Buffer.concat([script, Buffer.from(`cd ${work}\n${tail}\n`)]));
  const bin = busyboxBin(dir);
  return new Promise<{ code: number; stdout: string; stderr: string; work: string }>((resolve) => {
    execFile(join(bin, 'sh'), [join(dir, 'node.sh')], { env: { PATH: bin, ...over.env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr, work });
    });
  });
}

const image = randomBytes(3 * 1024 * 1024 + 17);
const sha = createHash('sha256').update(image).digest('hex');

t.test('getfile fetches the named file from http://VNFSMASTER/VNFSPREFIX/PATH', async (t) => {
  const s = await serve(t, new Map([['/files/vnfs/demo/image.cpio.gz', image]]));
  const r = await runNode(t, s.port, 'getfile vnfs/demo/image.cpio.gz && echo "rc=$?"; mkdir sub; getfile /vnfs/demo/image.cpio.gz sub/ && echo "rc2=$?"');
  t.match(r.stdout, /^rc=0$/m, r.stderr);
  t.ok(readFileSync(join(r.work, 'image.cpio.gz')).equals(image), 'the file arrived byte for byte');
  t.notOk(existsSync(join(r.work, 'image.cpio.gz.part')), 'no partial file left');
  t.match(r.stdout, /^rc2=0$/m, 'a leading / and a DEST directory are fine');
  t.ok(readFileSync(join(r.work, 'sub/image.cpio.gz')).equals(image));
  t.same(s.requests.slice(0, 2).map((q) => q.url), ['/files/vnfs/demo/image.cpio.gz.sha256', '/files/vnfs/demo/image.cpio.gz']);
});

t.test('getfile honours VNFSPREFIX and DEST', async (t) => {
  const s = await serve(t, new Map([['/pfx/files/a.txt', Buffer.from('hello\n')]]));
  const r = await runNode(t, s.port, 'getfile files/a.txt b.txt; echo "rc=$?"; cat b.txt', { prefix: 'pfx' });
  t.match(r.stdout, /rc=0\nhello\n/, r.stderr);
});

t.test('getfile resumes a partial download (wget -c sends a Range)', async (t) => {
  const s = await serve(t, new Map([['/files/vnfs/demo/image.cpio.gz', image]]));
  const half = 1024 * 1024 + 5;
  const r = await runNode(t, s.port, `getfile vnfs/demo/image.cpio.gz; echo "rc=$?"`, {});
  t.match(r.stdout, /rc=0/);
  // Now a node that already holds a part: only the rest is fetched.
  writeFileSync(join(r.work, 'again.part'), image.subarray(0, half));
  s.requests.length = 0;
  const r2 = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
    const dir = join(r.work, '..');
    writeFileSync(join(dir, 'again.sh'), `${readFileSync(join(dir, 'node.sh'), 'latin1').replace(/getfile vnfs.*$/m, 'getfile vnfs/demo/image.cpio.gz again; echo "rc=$?"')}`, 'latin1');
    execFile(join(dir, 'bin/sh'), [join(dir, 'again.sh')], { env: { PATH: join(dir, 'bin') } }, (_e, stdout, stderr) => resolve({ stdout, stderr }));
  });
  t.match(r2.stdout, /rc=0/, r2.stderr);
  t.ok(readFileSync(join(r.work, 'again')).equals(image), 'resumed file is complete and correct');
  t.same(s.requests.find((q) => q.url.endsWith('.gz'))?.range, `bytes=${half}-`, 'only the missing bytes were asked for');
});

t.test('getfile retries a cut transfer, resumes it, and verifies the sha256 sidecar', async (t) => {
  const s = await serve(t, new Map([
    ['/files/vnfs/demo/image.cpio.gz', image],
    ['/files/vnfs/demo/image.cpio.gz.sha256', Buffer.from(`${sha}  image.cpio.gz\n`)],
  ]));
  s.cutOnce.set('/files/vnfs/demo/image.cpio.gz', 700_000);
  const r = await runNode(t, s.port, 'getfile vnfs/demo/image.cpio.gz; echo "rc=$?"');
  t.match(r.stdout, /rc=0/, r.stderr);
  t.ok(readFileSync(join(r.work, 'image.cpio.gz')).equals(image));
  t.match(r.stderr, /attempt 1 of 6 failed/, 'the failed attempt is reported on the console');
  const gets = s.requests.filter((q) => q.url.endsWith('.gz'));
  t.equal(gets.length, 2, 'two attempts');
  t.match(gets[1].range ?? '', /^bytes=\d+-$/, 'the second attempt resumed');
});

t.test('getfile fails clearly: missing file, checksum mismatch, master down', async (t) => {
  const bad = createHash('sha256').update('something else').digest('hex');
  const s = await serve(t, new Map([
    ['/files/x.img', image],
    ['/files/x.img.sha256', Buffer.from(`${bad}\n`)],
  ]));
  const missing = await runNode(t, s.port, 'getfile vnfs/none/image.cpio.gz; echo "rc=$?"');
  t.match(missing.stdout, /rc=1/);
  t.match(missing.stderr, /getfile: failed to fetch vnfs\/none\/image\.cpio\.gz: the master does not serve it/);
  const mismatch = await runNode(t, s.port, 'getfile x.img; echo "rc=$?"; ls', { env: { GETFILE_RETRIES: '2' } });
  t.match(mismatch.stdout, /^rc=1$/m);
  t.match(mismatch.stderr, /sha256 mismatch/);
  t.match(mismatch.stderr, /failed to fetch x\.img from 127\.0\.0\.1:\d+ after 2 attempts/);
  t.notOk(existsSync(join(mismatch.work, 'x.img')), 'a corrupt file is not left under its name');
  const down = await runNode(t, 1, 'getfile x.img; echo "rc=$?"', { env: { GETFILE_RETRIES: '2' } });
  t.match(down.stdout, /rc=1/);
  t.match(down.stderr, /failed to fetch x\.img from 127\.0\.0\.1:1 after 2 attempts/);
});

t.test('the prelude stops a disabled node and traces at DEBUG >= 2', async (t) => {
  const s = await serve(t, new Map());
  const off = await runNode(t, s.port, 'echo "should not run"', { enabled: false });
  t.equal(off.code, 1);
  t.notMatch(off.stdout, /should not run/);
  t.match(off.stderr, /provisiond: node n0001 \(52:54:00:12:34:56\) is disabled on the master/);
  const dbg = await runNode(t, s.port, 'echo "traced $NODENAME"', { debug: 2 });
  t.match(dbg.stdout, /traced n0001/);
  t.match(dbg.stderr, /^\+ /m, 'set -x is on');
  const quiet = await runNode(t, s.port, 'echo "$NODENAME $NODEID $VNFS $READY_INTERVAL"', { debug: 1 });
  t.match(quiet.stdout, /n0001 52:54:00:12:34:56 centos 300/);
  t.notMatch(quiet.stderr, /^\+ /m);
});
