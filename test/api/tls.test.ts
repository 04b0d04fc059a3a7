/**
 * The API over TLS with a certificate the test makes with openssl (curl with --cacert and node's
 * https client trust it; plain HTTP to the port gets nothing), and the loopback rule as a real
 * `provisiond serve` applies it: a non-loopback api.listen without tls is refused at start with
 * the file, the key and the reason; with `insecure: true` it starts, on an address of a dummy
 * link (a veth end) in a namespace the test makes (127.* counts as loopback, so it cannot stand in).
 */
import t from 'tap';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ServeProcess, testConfig } from '../lib/daemon.js';
import { needRoot } from '../lib/gate.js';
import { testLab } from '../lib/netns.js';
import { CLI, REPO } from '../lib/paths.js';
import { makeStatedir } from '../lib/statedir.js';
import { apiUrl } from './lib/harness.js';
import { startDaemon } from '../lib/daemon.js';
import { createToken } from '../../src/registry/tokens.js';
import { ApiDocument, type OpenApiDoc } from './lib/validate.js';

const run = promisify(execFile);

/** A self-signed EC certificate for 127.0.0.1, written as etc/api.crt and etc/api.key under `dir`. */
function makeCert(dir: string): void {
  mkdirSync(join(dir, 'etc'), { recursive: true });
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=provisiond test', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', join(dir, 'etc/api.key'), '-out', join(dir, 'etc/api.crt'),
  ], { stdio: 'ignore' });
}

/** GET over https trusting `ca` only. */
function httpsGet(url: string, ca: string, token?: string): Promise<{ status: number; type: string | null; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'] ?? null, body: JSON.parse(text) as unknown }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('the API over TLS: curl --cacert and node trust the test CA; plain HTTP gets nothing', async (t) => {
  let statedir = '';
  const h = await startDaemon(t, 'api:\n  listen: 127.0.0.1\n  port: 0\n  tls:\n    cert: etc/api.crt\n    key: etc/api.key\n', { setup: (d) => makeCert((statedir = d)) });
  const base = apiUrl(h);
  t.match(base, /^https:\/\/127\.0\.0\.1:\d+$/);
  const ca = join(statedir, 'etc/api.crt');
  const { secret } = await createToken(h.daemon.registry, { name: 'tls', role: 'viewer' });

  const health = await run('curl', ['-sS', '--cacert', ca, '-w', '\\n%{http_code}', `${base}/api/v1/healthz`]);
  const [body, code] = health.stdout.split('\n');
  t.equal(code, '200', 'curl --cacert: 200');
  t.match(JSON.parse(body!), { status: 'ok' });
  const who = await run('curl', ['-sS', '--cacert', ca, '-H', `Authorization: Bearer ${secret}`, `${base}/api/v1/whoami`]);
  t.same(JSON.parse(who.stdout), { name: 'tls', role: 'viewer' });

  const untrusted = await run('curl', ['-sS', `${base}/api/v1/healthz`]).then(() => 0, (e: { code: number }) => e.code);
  t.equal(untrusted, 60, 'curl without the CA refuses the certificate (exit 60)');
  const plain = await run('curl', ['-sS', '-m', '5', '-w', '%{http_code}', base.replace('https:', 'http:') + '/api/v1/healthz']).then(
    (r) => ({ code: 0, out: r.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
  );
  t.not(plain.code, 0, `plain http to the TLS port fails (curl exit ${plain.code})`);
  t.notMatch(plain.out, /^2\d\d/, 'and gets no answer');

  // node's https client, and the answers checked against the document fetched over TLS too.
  const doc = new ApiDocument((await httpsGet(`${base}/api/v1/openapi.json`, readCa(ca))).body as OpenApiDoc);
  const r = await httpsGet(`${base}/api/v1/whoami`, readCa(ca), secret);
  t.equal(r.status, 200);
  t.same(doc.validateResponse(doc.byId('whoami.get')!, r.status, r.type, r.body), []);
  const denied = await httpsGet(`${base}/api/v1/whoami`, readCa(ca));
  t.equal(denied.status, 401);
  t.same(doc.validateResponse(doc.byId('whoami.get')!, denied.status, denied.type, denied.body), []);
});

function readCa(file: string): string {
  return readFileSync(file, 'utf8');
}

/** `provisiond --config FILE serve` until it exits (or `ms`); its exit code and output. */
function serveOnce(configPath: string, ms = 30_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, '--config', configPath, 'serve'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), ms);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

t.test('a non-loopback api.listen: refused without tls, served with insecure: true', async (t) => {
  if (!needRoot(t)) return;
  const statedir = makeStatedir(t, {}, { prefix: 'pvd-apitls-', layout: true });
  const configPath = join(statedir, 'provisiond.yaml');

  writeFileSync(configPath, testConfig(statedir, 'api:\n  listen: 10.250.0.1\n  port: 19871\n'));
  const refused = await serveOnce(configPath);
  t.not(refused.code, 0, `provisiond serve exits ${refused.code}`);
  t.match(refused.out, configPath, 'names the file');
  t.match(refused.out, 'api.listen', 'names the key');
  t.match(refused.out, /10\.250\.0\.1 is not a loopback address: API tokens would cross the network in clear; set api\.tls \(cert and key\), or api\.insecure: true/, 'says why and how');
  t.notMatch(refused.out, /\n\s+at /, 'no stack trace');

  const lab = testLab(t, 'pvd-apitls');
  const ns = lab.ns();
  // This kernel has no dummy links: one end of a veth pair inside the namespace holds the address.
  lab.link({ ns, dev: 'api0', addr: '10.250.0.1/24' }, { ns, dev: 'api1' });
  writeFileSync(configPath, testConfig(statedir, 'api:\n  listen: 10.250.0.1\n  port: 19871\n  insecure: true\n'));
  const d = await ServeProcess.start({ configPath, netns: { lab, ns } });
  t.teardown(() => d.stop());
  // The API starts after HTTP (the ready line): wait for its own.
  const end = Date.now() + 10_000;
  let line: string | undefined;
  while (!line && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    line = d.lines.map((l) => String(l.msg)).find((m) => m.startsWith('listening: api'));
  }
  t.equal(line, 'listening: api http://10.250.0.1:19871', 'serves plain HTTP on the non-loopback address');
  const health = await lab.run(ns, 'curl', ['-sS', '-w', '\\n%{http_code}', 'http://10.250.0.1:19871/api/v1/healthz']);
  t.equal(health.split('\n').at(-1), '200', 'curl from the namespace: 200');
});
