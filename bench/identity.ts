/**
 * bench/identity: a flood of wrong node credentials from one address against a real `provisiond
 * serve`, and what it does to a real node checking in from another address (issue 23's figure:
 * 10,000 wrong credentials per second from one address must not delay a real node's check-in by
 * more than 100 ms).
 *
 * The node (127.0.0.1) boots as far as its init script (its credential), then checks in
 * (`GET /nodescripts/ready` with the credential) every 50 ms: for SECONDS alone, then for SECONDS
 * while bench/identity/flood.c (built here with cc; a C client, so the flood is not limited by the
 * client) opens connections from 127.0.0.2 at RATE per second, each presenting a wrong credential.
 * The daemon answers the first ones 403, then 429, then closes the address's connections unread.
 * No peer has per-boot node credentials to flood: the ratio compares the check-in latency during the
 * flood with the same node's alone.
 * Env: IDENTITY_BENCH_SECONDS (default 10), IDENTITY_BENCH_RATE (10000).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServeProcess } from '../test/lib/daemon.js';
import { freePort } from '../test/lib/fuzz-daemon.js';
import { CLI, REPO } from '../test/lib/paths.js';
import { sleep } from '../test/lib/sleep.js';
import { BenchResults } from './lib/results.js';

const DEFAULTS = { SECONDS: '10', RATE: '10000' };
const setting = (k: keyof typeof DEFAULTS) => Number(process.env[`IDENTITY_BENCH_${k}`] ?? DEFAULTS[k]);
const SECONDS = setting('SECONDS');
const RATE = setting('RATE');
const NODE = '52:54:00:bb:23:01';
const results = new BenchResults('identity', { envPrefix: 'IDENTITY_BENCH_' });
for (const [k, v] of Object.entries(DEFAULTS)) {
  const value = process.env[`IDENTITY_BENCH_${k}`];
  if (value !== undefined && value !== v) results.nonDefault(`IDENTITY_BENCH_${k}=${value} (default ${v})`);
}

const dir = mkdtempSync(join(tmpdir(), 'pvd-bench-identity-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const flooder = join(dir, 'flood');
execFileSync('cc', ['-O2', '-Wall', '-o', flooder, join(REPO, 'bench/identity/flood.c')]);

const statedir = join(dir, 'state');
for (const d of ['nodescripts/init/all', 'nodescripts/ready/all', 'files', 'vnfs', 'tftp']) mkdirSync(join(statedir, d), { recursive: true });
writeFileSync(join(statedir, 'nodescripts/ready/all/10-ok'), '#!/bin/sh\necho true\n');
chmodSync(join(statedir, 'nodescripts/ready/all/10-ok'), 0o755);
const configPath = join(statedir, 'provisiond.yaml');
const port = await freePort();
writeFileSync(configPath, `statedir: ${statedir}\nmaster: 127.0.0.1\nlog: { level: warn }\nhttp: { listen: 127.0.0.1, port: ${port} }\ntftp: { enabled: false }\ndhcp: { enabled: false }\napi: { enabled: false }\n`);
execFileSync(process.execPath, [CLI, '--config', configPath, 'node', 'add', NODE, 'b0001', '--ipaddr', '127.0.0.1'], { stdio: 'ignore' });
const serve = await ServeProcess.start({ configPath, logFile: join(dir, 'serve.log'), readyUrl: `http://127.0.0.1:${port}/healthz` });
process.on('exit', () => serve.child.kill('SIGKILL'));

/** One GET from 127.0.0.1 (a new connection, as the node's agent makes one per check-in): status and ms. */
function get(path: string, credential?: string): Promise<{ status: number; ms: number; body: string }> {
  const began = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers: credential ? { Authorization: `Bearer ${credential}` } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - began, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const init = await get(`/nodescripts/init?nodeid=${NODE}`);
const credential = /^PROVISIOND_CREDENTIAL=([0-9a-f]{64});/m.exec(init.body)?.[1];
if (!credential) throw new Error(`no credential in the init script: ${init.status} ${init.body.slice(0, 200)}`);

async function checkIns(ms: number): Promise<{ ms: number[]; failed: number }> {
  const out: number[] = [];
  let failed = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const r = await get(`/nodescripts/ready?nodeid=${NODE}`, credential).catch(() => ({ status: 0, ms: 0, body: '' }));
    if (r.status === 200) out.push(r.ms);
    else failed++;
    await sleep(50);
  }
  return { ms: out, failed };
}
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

const quiet = await checkIns(SECONDS * 1000);
const flood = spawn(flooder, ['127.0.0.2', String(port), `/nodescripts/ready?nodeid=${NODE}`, String(RATE), String(SECONDS + 1), '512'], { stdio: ['ignore', 'pipe', 'inherit'] });
let floodOut = '';
flood.stdout.on('data', (d: Buffer) => (floodOut += d.toString()));
const floodDone = new Promise<void>((r) => flood.on('exit', () => r()));
await sleep(500); // the flood is under way
const during = await checkIns(SECONDS * 1000);
await floodDone;
const f = JSON.parse(floodOut) as { started: number; answered: number; dropped: number; failed: number; s403: number; s4xx: number; s5xx: number; rate: number };
await serve.stop();

const ms = (v: number) => `${v.toFixed(1)} ms`;
const row = (name: string, x: { ms: number[]; failed: number }) => [name, `${x.ms.length} ok, ${x.failed} failed`, ms(pct(x.ms, 50)), ms(pct(x.ms, 99)), ms(Math.max(...x.ms))];
const delay = pct(during.ms, 99) - pct(quiet.ms, 99);
results.write({
  name: 'identity',
  title:
    `\`bench/identity.ts\`: a real \`provisiond serve\` (default security settings); a node at 127.0.0.1 checks in with its credential every 50 ms (a new connection each time), ${SECONDS} s alone, then ${SECONDS} s while ` +
    `bench/identity/flood.c opens connections from 127.0.0.2 at ${RATE.toLocaleString('en')}/s, each presenting a wrong credential. No peer has node credentials to flood: the ratio is the node's p99 during the flood / alone.`,
  columns: [{ title: 'the real node' }, { title: 'check-ins', align: 'right' }, { title: 'p50', align: 'right' }, { title: 'p99', align: 'right' }, { title: 'max', align: 'right' }],
  rows: [row('alone', quiet), row(`during ${Math.round(f.rate).toLocaleString('en')} wrong credentials/s`, during), ['flood / alone (p99)', '-', '-', `${(pct(during.ms, 99) / pct(quiet.ms, 99)).toFixed(2)}x`, '-']],
  notes: [
    `The flood: ${f.started.toLocaleString('en')} connections in ${SECONDS + 1} s (${Math.round(f.rate).toLocaleString('en')}/s); ${f.s403} answered 403 (the credential checked), ${f.s4xx - f.s403} answered 429 (rate limited), ${f.dropped.toLocaleString('en')} closed unread (the address cut at accept), ${f.s5xx} 5xx, ${f.failed} failed to connect.`,
    `Goal: the real node's check-ins delayed by at most 100 ms at ${RATE.toLocaleString('en')} wrong credentials/s: p99 +${delay.toFixed(1)} ms, ${during.failed} failed check-ins: ${delay <= 100 && during.failed === 0 && f.rate >= RATE * 0.95 ? 'met' : 'NOT met'}.`,
  ],
});
