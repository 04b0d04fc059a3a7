import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, get, request } from 'node:http';
import { connect } from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { silentLogger } from '../../src/log/logger.js';
import { HttpError } from '../../src/servers/http/errors.js';
import { HttpServer } from '../../src/servers/http/http-server.js';
import type { TransferReport } from '../../src/servers/http/file-sender.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function server(
  t: { teardown(fn: () => unknown): void },
  dir: string,
  zeroCopy: boolean,
  closeGraceMs?: number,
  { requestTimeoutMs = 30_000, transfer }: { requestTimeoutMs?: number; transfer?: (r: TransferReport) => void } = {},
): Promise<HttpServer> {
  const s = new HttpServer({
    logger: silentLogger(),
    options: {
      listen: '127.0.0.1',
      port: 0,
      trees: [],
      fallbackTree: { name: 'files', dir },
      filePrefixes: ['files'],
      maxScriptRequestsPerAddress: 4,
      requestTimeoutMs,
      zeroCopy,
      closeGraceMs,
    },
    handlers: {
      nodescript: async () => Readable.from(['#!/bin/sh\n']),
      ipxeScript: async () => '#!ipxe\n',
      bootFile: async () => {
        throw new HttpError(404, 'not found');
      },
      nodeEvent: async () => {},
      transfer,
    },
  });
  await s.listen();
  t.teardown(() => s.close());
  return s;
}

t.test('large bodies: the sendfile path and the JavaScript path send the same bytes, ranges included', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-http-zc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const data = randomBytes(24 * 1024 * 1024 + 5);
  writeFileSync(join(dir, 'big.img'), data);
  for (const zeroCopy of [true, false]) {
    const s = await server(t, dir, zeroCopy);
    t.equal(s.zeroCopy, zeroCopy, `zero-copy ${zeroCopy ? 'on' : 'off'}`);
    const base = `http://127.0.0.1:${s.port}/files/big.img`;
    for (let i = 0; i < 2; i++) {
      const whole = Buffer.from(await (await fetch(base)).arrayBuffer());
      t.equal(sha256(whole), sha256(data), `whole file, request ${i + 1}`);
    }
    const part = await fetch(base, { headers: { Range: 'bytes=1000-20000000' } });
    t.equal(part.status, 206);
    t.equal(sha256(Buffer.from(await part.arrayBuffer())), sha256(data.subarray(1000, 20000001)), 'a range');
    // A client that leaves mid-transfer: the server carries on serving the next one.
    await new Promise<void>((resolve) => {
      const req = request(base, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => resolve());
      req.end();
    });
    await new Promise((r) => setTimeout(r, 300));
    const after = Buffer.from(await (await fetch(base)).arrayBuffer());
    t.equal(sha256(after), sha256(data), 'served whole after a client went away');
  }
});

/** GETs `url` on `agent`; the body's hash and the local port of the connection that carried it. */
function fetchOn(agent: Agent, url: string): Promise<{ sha: string; localPort: number; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent }, (res) => {
      const h = createHash('sha256');
      res.on('data', (c: Buffer) => h.update(c));
      res.on('end', () => resolve({ sha: h.digest('hex'), localPort: req.socket!.localPort!, reused: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

t.test('after a zero-copy transfer the keep-alive connection serves the next request', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-http-zc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const data = randomBytes(12 * 1024 * 1024 + 3);
  writeFileSync(join(dir, 'big.img'), data);
  writeFileSync(join(dir, 'small.txt'), 'small\n');
  const s = await server(t, dir, true);
  t.equal(s.zeroCopy, true, 'through sendfile');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const base = `http://127.0.0.1:${s.port}/files`;
  const first = await fetchOn(agent, `${base}/big.img`);
  t.equal(first.sha, sha256(data), 'the first body is whole');
  const second = await fetchOn(agent, `${base}/big.img`);
  t.equal(second.sha, sha256(data), 'the second body is whole');
  t.ok(second.reused, 'the second request reused the connection');
  t.equal(second.localPort, first.localPort, 'on the same TCP connection');
  const third = await fetchOn(agent, `${base}/small.txt`);
  t.equal(third.sha, sha256(Buffer.from('small\n')), 'then a small file through Node on it');
  t.equal(third.localPort, first.localPort, 'still the same connection');
});

t.test('a client that stops reading is cut after the idle timeout, while the thread waits for the socket', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-http-zc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'big.img'), randomBytes(64 * 1024 * 1024));
  const reports: TransferReport[] = [];
  const s = await server(t, dir, true, undefined, { requestTimeoutMs: 1000, transfer: (r) => reports.push(r) });
  const c = connect(s.port, '127.0.0.1');
  t.teardown(() => c.destroy());
  c.pause(); // never reads: the socket's buffers fill and sendfile(2) meets EAGAIN
  c.write('GET /files/big.img HTTP/1.1\r\nHost: x\r\n\r\n');
  const began = Date.now();
  while (reports.length === 0 && Date.now() - began < 10_000) await new Promise((r) => setTimeout(r, 50));
  t.equal(reports.length, 1, `the transfer ended after ${Date.now() - began} ms`);
  t.equal(reports[0]?.complete, false, 'cut, not complete');
  t.ok(reports[0]!.bytes < 64 * 1024 * 1024, `${reports[0]?.bytes} bytes sent before the cut`);
  t.ok(Date.now() - began >= 1000, 'not before the idle timeout');
});

t.test('close() cuts a transfer still running after the grace period, sendfile included', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-http-zc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'big.img'), randomBytes(24 * 1024 * 1024));
  const s = await server(t, dir, true, 500);
  t.equal(s.zeroCopy, true, 'through sendfile');
  // 1 MiB/s: the transfer would take 24 s.
  const slow = promisify(execFile)('curl', ['-sS', '--limit-rate', '1M', '-o', '/dev/null', '-w', '%{size_download}', `http://127.0.0.1:${s.port}/files/big.img`]).then(
    (r) => ({ ok: true, out: r.stdout }),
    (e: { stdout?: string }) => ({ ok: false, out: e.stdout ?? '' }),
  );
  await new Promise((r) => setTimeout(r, 800));
  const began = Date.now();
  await s.close();
  t.ok(Date.now() - began < 5000, `close() returned after ${Date.now() - began} ms (grace 500 ms)`);
  const res = await slow;
  t.notOk(res.ok, 'the client sees the transfer cut');
  t.ok(Number(res.out) < 24 * 1024 * 1024, `it got ${res.out} bytes, not the whole file`);
});
