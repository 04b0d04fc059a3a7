/**
 * Everything a node or a stranger can send to the node-facing HTTP server, fuzzed:
 * - the path, range and hardware-address parsing: 100,000 coverage-guided inputs (test/lib/fuzz.ts):
 *   a getfile path never leaves its tree, a range stays inside the file, the route is a fixed name;
 * - a real `provisiond serve`: 100,000 hostile requests over pipelined connections from another
 *   address (mutated request lines, paths and query strings, headers, credentials, event and upload
 *   bodies, chunked encodings). Every request is counted in the metrics (by route and status, or
 *   as malformed), no answer is a 5xx, the daemon keeps serving, a real node (curl: its init script,
 *   then a ready check-in with the credential it was given) is served right after, and its sockets
 *   come back to where they were.
 * Bad credentials are not rate limited here (security.maxBadCredentialsPerMinute): the limit would
 * turn most of the fuzz away at accept, before a parser sees it (test/http/identity covers the limit).
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mutate, rng, runGuided } from '../lib/fuzz.js';
import { startFuzzDaemon, until } from '../lib/fuzz-daemon.js';
import { CLI } from '../lib/paths.js';
import { sumOf } from '../lib/prom-text.js';

const COUNT = Number(process.env.FUZZ_COUNT ?? 100_000); // FUZZ_COUNT: a shorter run while debugging
const NODE = '52:54:00:bb:00:01';
const run = promisify(execFile);

t.test('paths, ranges and hardware addresses: 100,000 coverage-guided inputs', async (t) => {
  const report = await runGuided('http', 100_000, 17);
  t.same(report.findings, [], 'no path leaves its tree, no range leaves its file, every route is a fixed name');
  t.equal(report.runs, 100_000);
  t.ok(report.blocks > report.seedBlocks, `coverage grew beyond the seeds (${report.seedBlocks} -> ${report.blocks} blocks)`);
});

/** Closes each connection last, so the server closes it first: `GET /healthz` with `Connection: close`. */
const SENTINEL = Buffer.from('GET /healthz HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n', 'latin1');

/**
 * Pipelines `requests` on one connection from 127.0.0.2, then the sentinel; resolves with what came
 * back when the server closed, and whether the sentinel was answered. The server closes first (at a
 * request it refuses, or after the sentinel), so the TIME_WAIT is its own: a client that closed
 * first would hold one of 127.0.0.2's ports for a minute per connection, and 100,000 requests
 * would fill the whole ephemeral range, starving every other test's connect() (EADDRNOTAVAIL).
 * A connection the server keeps open (a body it still waits for) is reset after a quiet second.
 */
function pipeline(port: number, requests: Buffer[]): Promise<{ out: string; sentinel: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    let out = '';
    // One listener; each chunk only restarts the timer (a listener per chunk piled up past Node's limit of 10).
    s.on('timeout', () => s.resetAndDestroy());
    const quiet = () => s.setTimeout(1_000);
    s.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      quiet();
    });
    s.on('error', () => {});
    s.on('close', () => {
      const last = out.slice(out.lastIndexOf('HTTP/1.1 '));
      resolve({ out, sentinel: /^HTTP\/1\.1 200 [^]*?\r\n\r\n\{"status":"ok"/.test(last) });
    });
    s.on('connect', () => {
      s.write(Buffer.concat([...requests, SENTINEL]));
      quiet();
    });
  });
}

t.test('a real daemon: 100,000 hostile requests, then a real node', async (t) => {
  const d = await startFuzzDaemon(
    t,
    {
      'nodescripts/init/all/10-hello': '#!/bin/sh\necho "echo hello from $NODENAME"\n',
      'files/hello.txt': { content: 'hello, node\n' },
    },
    'security: { maxBadCredentialsPerMinute: 1000000000 }',
  );
  await run(process.execPath, [CLI, '--config', `${d.statedir}/provisiond.yaml`, 'node', 'add', NODE, 'hb0001']);
  let sentinels = 0; // answered sentinels, not part of the fuzz
  const processed = async () => {
    const m = await d.metrics();
    return sumOf(m, 'provisiond_http_requests_total') + sumOf(m, 'provisiond_http_malformed_requests_total') - sentinels;
  };
  const socketsBefore = d.sockets();
  const base = await processed();

  const cred = 'a'.repeat(64);
  // Requests as parts: most inputs keep a request line and headers Node's parser takes (bytes it
  // refuses in a target are percent-encoded, CR and LF dropped from header values), so the fuzz
  // reaches the routes, the query and credential parsing and the body readers; a fifth are mutated
  // as raw bytes, for the parser itself.
  interface Template {
    method: string;
    target: string;
    headers: Array<[string, string]>;
    body?: string;
  }
  const templates: Template[] = [
    { method: 'GET', target: '/nodescripts/init?nodeid=52:54:00:00:00:99', headers: [] },
    { method: 'GET', target: `/nodescripts/ready?nodeid=${NODE}&state=ready`, headers: [['Authorization', `Bearer ${cred}`]] },
    { method: 'GET', target: `/nodes/${NODE}/events?stage=ready&msg=exit%200`, headers: [['Authorization', `Bearer ${cred}`]] },
    { method: 'POST', target: `/nodes/${NODE}/events`, headers: [['X-Provisiond-Credential', cred], ['Content-Type', 'application/x-www-form-urlencoded']], body: 'stage=kernel&msg=6.1.0' },
    { method: 'POST', target: `/nodes/${NODE}/events`, headers: [['Content-Type', 'application/json']], body: '{"stage":"ready","msg":"exit 0","ok":true}' },
    { method: 'GET', target: '/files/hello.txt', headers: [['Range', 'bytes=2-5']] },
    { method: 'GET', target: '/vnfs/demo/image.cpio.gz', headers: [['Range', 'bytes=-100'], ['If-None-Match', '"x"']] },
    { method: 'GET', target: '/boot/boot.ipxe', headers: [] },
    { method: 'GET', target: `/boot/${NODE}.ipxe`, headers: [] },
    { method: 'GET', target: '/boot/vnfs/demo/vmlinuz', headers: [] },
    { method: 'GET', target: `/nodes/${NODE}/actions?wait=0`, headers: [['Authorization', `Bearer ${cred}`]] },
    { method: 'PUT', target: `/nodes/${NODE}/upload/0123456789abcdef`, headers: [['Authorization', `Bearer ${cred}`]], body: 'tar-bytes' },
    { method: 'HEAD', target: '/healthz', headers: [] },
  ];
  const tokens = ['%2e%2e/', '%2f', '%00', '../', '?', '&', '=', 'nodeid=', 'stage=', 'msg=', 'wait=', '%', '%%', '%c0%ae', '.', '//', 'bytes=', '-', ',', '99999999999999999999', NODE, '52-54-00-bb-00-01', 'Bearer ', '\\'].map((x) => Buffer.from(x, 'latin1'));
  const rawSeeds = templates.map((tp) => Buffer.from(`${tp.method} ${tp.target} HTTP/1.1\r\nHost: m\r\n${tp.headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}${tp.body ? `Content-Length: ${tp.body.length}\r\n` : ''}\r\n${tp.body ?? ''}`, 'latin1'));
  const rawDict = ['\r\n', ': ', 'Content-Length: ', 'Transfer-Encoding: chunked\r\n', 'HTTP/1.0', 'HTTP/1.1', 'Connection: close\r\n', 'Expect: 100-continue\r\n'].map((x) => Buffer.from(x, 'latin1'));
  const encodeTarget = (b: Buffer) => {
    let out = '';
    for (const c of b) out += c > 0x20 && c < 0x7f && c !== 0x23 ? String.fromCharCode(c) : `%${c.toString(16).padStart(2, '0')}`;
    return out.startsWith('/') ? out : `/${out}`;
  };
  const headerValue = (b: Buffer) => b.toString('latin1').replace(/[\r\n\0]/g, '');
  const build = (r: () => number): Buffer => {
    if (r() < 0.2) return mutate(rawSeeds[Math.floor(r() * rawSeeds.length)]!, r, rawSeeds, rawDict, 2048);
    const tp = templates[Math.floor(r() * templates.length)]!;
    const target = r() < 0.8 ? encodeTarget(mutate(Buffer.from(tp.target, 'latin1'), r, [], tokens, 600)) : tp.target;
    const headers = tp.headers.map(([k, v]) => [k, r() < 0.5 ? headerValue(mutate(Buffer.from(v, 'latin1'), r, [], tokens, 300)) : v] as const);
    const body = tp.body !== undefined && r() < 0.7 ? mutate(Buffer.from(tp.body, 'latin1'), r, [], tokens, 1000) : tp.body !== undefined ? Buffer.from(tp.body, 'latin1') : null;
    const method = r() < 0.05 ? ['DELETE', 'OPTIONS', 'PATCH', 'TRACE', 'POST', 'GET'][Math.floor(r() * 6)]! : tp.method;
    return Buffer.concat([Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: m\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}${body ? `Content-Length: ${body.length}\r\n` : ''}\r\n`, 'latin1'), body ?? Buffer.alloc(0)]);
  };
  const r = rng(31);
  const began = Date.now();
  const PER_CONNECTION = 20;
  let sent = 0;
  let fiveHundreds = 0;
  const failures: string[] = [];
  let done = base;
  const worker = async () => {
    while (done - base < COUNT && Date.now() - began < 400_000) {
      const batch = Array.from({ length: PER_CONNECTION }, () => build(r));
      sent += batch.length;
      const { out, sentinel } = await pipeline(d.httpPort, batch);
      if (sentinel) sentinels++;
      const errors = out.match(/^HTTP\/1\.[01] 5\d\d[\s\S]{0,400}/gm) ?? [];
      fiveHundreds += errors.length;
      if (errors.length && failures.length < 5) failures.push(`${errors[0]}\n--- in a connection carrying:\n${batch.map((b) => JSON.stringify(b.toString('latin1').slice(0, 300))).join('\n')}`);
      if (sent % 2000 < PER_CONNECTION) done = await processed();
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  const total = (await until(processed, (v) => v - base >= COUNT, 10_000)) - base;
  t.ok(total >= COUNT, `${total} requests reached the server and were counted, by route and status or as malformed (${sent} sent in ${((Date.now() - began) / 1000).toFixed(1)} s; the rest followed a request that closed its connection)`);
  t.equal(fiveHundreds, 0, 'no answer is a 5xx');
  for (const f of failures) t.comment(f);
  if (fiveHundreds) t.comment(readFileSync(join(d.statedir, 'serve.log'), 'utf8').split('\n').filter((l) => /"level":50/.test(l)).slice(0, 5).join('\n'));
  const m = await d.metrics();
  t.ok(sumOf(m, 'provisiond_http_malformed_requests_total') > 0, `malformed requests are counted (${sumOf(m, 'provisiond_http_malformed_requests_total')})`);
  t.ok(sumOf(m, 'provisiond_http_requests_total', { status: '500' }) === 0, 'the server counted no 500');

  // What the fuzz found once: a file name longer than the file system takes is not found, not a 500.
  const { stdout: long } = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${d.http}/files/${'n'.repeat(300)}.txt`]);
  t.equal(long, '404', 'a 300-character file name: 404');

  // A real node right after: its init script (and the credential in it), then a ready check-in.
  const base2 = d.http;
  const { stdout: script } = await run('curl', ['-sf', `${base2}/nodescripts/init?nodeid=${NODE}`]);
  t.match(script, /echo hello from hb0001/, 'curl gets the node\'s init script');
  const credential = /^PROVISIOND_CREDENTIAL=([0-9a-f]{64});/m.exec(script)?.[1];
  t.ok(credential, 'with a credential');
  const { stdout: code } = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${credential}`, `${base2}/nodes/${NODE}/events?stage=ready&msg=exit%200`]);
  t.equal(code, '200', 'its ready check-in is accepted');
  t.ok(d.serve.running, 'the daemon is still running');
  const sockets = await until(() => d.sockets(), (v) => v <= socketsBefore, 15_000);
  t.ok(sockets <= socketsBefore, `open sockets back to ${sockets} (${socketsBefore} before)`);
});
