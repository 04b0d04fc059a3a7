import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { silentLogger } from '../../src/log/logger.js';
import { HttpError } from '../../src/servers/http/errors.js';
import { HttpServer } from '../../src/servers/http/http-server.js';
import { findPython } from '../../src/servers/http/sendfile.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function server(t: { teardown(fn: () => unknown): void }, dir: string, zeroCopy: boolean, closeGraceMs?: number): Promise<HttpServer> {
  const s = new HttpServer({
    logger: silentLogger(),
    options: {
      listen: '127.0.0.1',
      port: 0,
      trees: [],
      fallbackTree: { name: 'files', dir },
      filePrefixes: ['files'],
      maxScriptRequestsPerAddress: 4,
      requestTimeoutMs: 30_000,
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
  const python = findPython();
  if (!python && process.env.CI === 'true') t.fail('python3 is missing: the zero-copy path is not tested');
  for (const zeroCopy of python ? [true, false] : [false]) {
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

t.test('close() cuts a transfer still running after the grace period, sendfile helper included', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-http-zc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'big.img'), randomBytes(24 * 1024 * 1024));
  const s = await server(t, dir, findPython() !== null, 500);
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
