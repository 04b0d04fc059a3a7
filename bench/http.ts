/**
 * bench/http: the HTTP provisioning service (`provisiond serve` as a real process) against its peers,
 * measured in the same run on loopback:
 *  1. boot storm: NODES simulated nodes ask GET /nodescripts/init at once, SCRIPTS executable
 *     scripts each: time until all are served, p50/p99 latency; against the raw process-spawn
 *     ceiling of the same machine (the same NODES x SCRIPTS scripts run by `xargs -P <2 x cores> -n 1 env`).
 *  2. getfile of a MiB-sized file (default 512 MiB): one client, then 32 concurrent clients (curl to
 *     /dev/null), against nginx (sendfile on) serving the same file on another loopback port.
 *  3. small-file (4 KiB) requests per second over keep-alive connections, against nginx.
 * Logging is at `warn` for provisiond and access_log off for nginx: both measured without request logs.
 *
 * Env: HTTP_BENCH_NODES (1000), HTTP_BENCH_SCRIPTS (10), HTTP_BENCH_MB (512), HTTP_BENCH_CLIENTS (32),
 *      HTTP_BENCH_SECONDS (small-file phase, 5).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { ServeProcess } from '../test/lib/daemon.js';
import { sleep } from '../test/lib/sleep.js';
import { BenchResults } from './lib/results.js';

const NODES = Number(process.env.HTTP_BENCH_NODES ?? 1000);
const SCRIPTS = Number(process.env.HTTP_BENCH_SCRIPTS ?? 10);
const MB = Number(process.env.HTTP_BENCH_MB ?? 512);
const CLIENTS = Number(process.env.HTTP_BENCH_CLIENTS ?? 32);
const SECONDS = Number(process.env.HTTP_BENCH_SECONDS ?? 5);
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));

const results = new BenchResults('http', { envPrefix: 'HTTP_BENCH_' });
for (const [name, value, byDefault] of [['NODES', NODES, 1000], ['SCRIPTS', SCRIPTS, 10], ['MB', MB, 512], ['CLIENTS', CLIENTS, 32], ['SECONDS', SECONDS, 5]] as const) {
  if (value !== byDefault) results.nonDefault(`HTTP_BENCH_${name}=${value} (default ${byDefault})`);
}
/** The table and notes of bench/RESULTS.md, filled as the phases print. */
const rows: string[][] = [];
const notes: string[] = [];
function writeResults(): void {
  results.write({
    name: 'http',
    title:
      `\`bench/http.ts\`: \`provisiond serve\` on loopback, ${cpus().length} cores. A boot storm: ${NODES} nodes ask \`GET /nodescripts/init\` at once, ` +
      `${SCRIPTS} executable scripts each, against the same scripts run by \`xargs -P ${2 * cpus().length}\` (ratio: xargs time / ours). ` +
      `getfile of a ${MB} MiB file (one client, best of 3; then ${CLIENTS} clients) and 4 KiB files over ${CLIENTS} keep-alive connections ` +
      `(${SECONDS} s), against nginx (sendfile on) serving the same files (ratio: ours / nginx). Both without request logs.`,
    columns: [{ title: 'measure' }, { title: 'provisiond', align: 'right' }, { title: 'peer', align: 'right' }, { title: 'ratio', align: 'right' }],
    rows,
    notes,
  });
}

const dir = mkdtempSync(join(tmpdir(), 'pvd-bench-http-'));
const children: ChildProcess[] = [];
/** Process groups to kill at the end: nginx's master and its workers (a killed master leaves them running). */
const groups: number[] = [];
const cleanup = () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const g of groups) {
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

const fmtRate = (bytesPerSec: number) => `${(bytesPerSec / 1e9).toFixed(2)} GB/s`;
const ratio = (ours: number, peer: number) => `${(ours / peer).toFixed(2)}x`;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function setupStatedir(): void {
  // nginx's workers run as nobody: the tree must be readable by others.
  chmodSync(dir, 0o755);
  for (const d of ['nodescripts/init/all', 'files', 'vnfs', 'tftp', 'var']) mkdirSync(join(dir, d), { recursive: true });
  for (let i = 0; i < SCRIPTS; i++) {
    const p = join(dir, 'nodescripts/init/all', `${String(10 + i).padStart(2, '0')}-step${i}`);
    writeFileSync(p, `#!/bin/sh\necho "echo step ${i} for $NODENAME"\n`);
    chmodSync(p, 0o755);
  }
  const block = randomBytes(1 << 20);
  const fd = openSync(join(dir, 'files/big.img'), 'w');
  for (let i = 0; i < MB; i++) writeSync(fd, block);
  closeSync(fd);
  writeFileSync(join(dir, 'files/small.bin'), randomBytes(4096));
}

async function startProvisiond(port: number, sendfile = true): Promise<void> {
  const config = join(dir, `provisiond-${port}.yaml`);
  writeFileSync(
    config,
    `statedir: ${dir}\nmaster: 127.0.0.1\nlog: { level: warn, format: json }\nhttp:\n  listen: 127.0.0.1\n  port: ${port}\n  maxScriptRequestsPerAddress: ${NODES * 2}\n  sendfile: ${sendfile}\ntftp: { enabled: false }\ndhcp: { enabled: false }\napi: { enabled: false }\n`,
  );
  const daemon = await ServeProcess.start({ configPath: config, readyUrl: `http://127.0.0.1:${port}/healthz`, timeoutMs: 20_000 });
  children.push(daemon.child);
}

async function startNginx(port: number): Promise<void> {
  const conf = join(dir, 'nginx.conf');
  mkdirSync(join(dir, 'nginx-tmp'), { recursive: true });
  const tmp = join(dir, 'nginx-tmp');
  writeFileSync(
    conf,
    `daemon off;\nworker_processes auto;\npid ${dir}/nginx.pid;\nerror_log ${dir}/nginx-error.log;\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n  client_body_temp_path ${tmp}; proxy_temp_path ${tmp}; fastcgi_temp_path ${tmp}; uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};\n  server { listen 127.0.0.1:${port}; root ${dir}; }\n}\n`,
  );
  const child = spawn(NGINX!, ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'inherit'], detached: true });
  groups.push(child.pid!);
  await waitHttp(port, '/files/small.bin');
}

async function waitHttp(port: number, path: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.ok, () => false);
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing answers on 127.0.0.1:${port}${path}`);
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function bootStorm(port: number, label: string): Promise<number> {
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const began = performance.now();
  const latencies = await Promise.all(
    Array.from({ length: NODES }, (_, i) => {
      const mac = `02:00:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
      return new Promise<number>((resolve, reject) => {
        const t0 = performance.now();
        const req = request({ host: '127.0.0.1', port, path: `/nodescripts/init?nodeid=${mac}`, agent }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('aborted', () => reject(new Error(`node ${mac}: response cut after ${(performance.now() - t0).toFixed(0)} ms`)));
          res.on('error', reject);
          res.on('end', () => {
            if (res.statusCode !== 200 || !body.includes(`step ${SCRIPTS - 1} for`)) reject(new Error(`node ${mac}: ${res.statusCode} ${body.slice(0, 200)}`));
            else resolve(performance.now() - t0);
          });
        });
        req.on('error', reject);
        req.end();
      });
    }),
  );
  const total = (performance.now() - began) / 1000;
  latencies.sort((a, b) => a - b);
  console.log(`  ${label}: ${NODES} nodes served in ${total.toFixed(2)} s (${((NODES * SCRIPTS) / total).toFixed(0)} scripts/s), p50 ${pct(latencies, 50).toFixed(0)} ms, p99 ${pct(latencies, 99).toFixed(0)} ms`);
  notes.push(`Boot storm, ${label}: ${((NODES * SCRIPTS) / total).toFixed(0)} scripts/s, p50 ${pct(latencies, 50).toFixed(0)} ms, p99 ${pct(latencies, 99).toFixed(0)} ms.`);
  agent.destroy();
  return total;
}

function spawnCeiling(): number {
  const list = join(dir, 'spawn-list');
  const names = Array.from({ length: SCRIPTS }, (_, i) => join(dir, 'nodescripts/init/all', `${String(10 + i).padStart(2, '0')}-step${i}`));
  writeFileSync(list, Array.from({ length: NODES }, () => names.join('\n')).join('\n') + '\n');
  const p = 2 * cpus().length;
  const t0 = performance.now();
  execFileSync('sh', ['-c', `xargs -P ${p} -n 1 env < ${list} > /dev/null`]);
  return (performance.now() - t0) / 1000;
}

function curlOnce(port: number, path: string): number {
  const out = execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', `http://127.0.0.1:${port}${path}`], { encoding: 'utf8' });
  const [size, time] = out.split(' ').map(Number);
  if (size !== MB * 1024 * 1024) throw new Error(`short download from ${port}: ${size} bytes`);
  return size! / time!;
}

async function curlMany(port: number, path: string, n: number): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<void>((resolve, reject) => {
        const c = spawn('curl', ['-s', '-o', '/dev/null', '-w', '%{size_download}', `http://127.0.0.1:${port}${path}`], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        c.stdout.on('data', (d) => (out += d));
        c.on('close', (code) => (Number(out) === MB * 1024 * 1024 ? resolve() : reject(new Error(`short download from ${port}${path}: ${out} (curl exit ${code})`))));
      }),
    ),
  );
  return (n * MB * 1024 * 1024) / ((performance.now() - t0) / 1000);
}

async function smallFiles(port: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  let count = 0;
  const end = performance.now() + SECONDS * 1000;
  const loop = async () => {
    while (performance.now() < end) {
      await new Promise<void>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/files/small.bin', agent }, (res) => {
          res.on('data', () => {});
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end();
      });
      count++;
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, loop));
  agent.destroy();
  return count / SECONDS;
}

async function main(): Promise<void> {
  console.log(`bench/http: ${cpus().length} cores; ${NODES} nodes x ${SCRIPTS} scripts; ${MB} MiB getfile; ${CLIENTS} clients`);
  setupStatedir();
  const ours = await freePort();
  await startProvisiond(ours);

  console.log('1. boot storm (GET /nodescripts/init, all nodes at once)');
  const first = await bootStorm(ours, 'first boot (auto-registers every node)');
  const second = await bootStorm(ours, 'second boot (registered nodes)');
  const ceiling = spawnCeiling();
  console.log(`  process-spawn ceiling: the same ${NODES * SCRIPTS} scripts by xargs -P ${2 * cpus().length} in ${ceiling.toFixed(2)} s (${((NODES * SCRIPTS) / ceiling).toFixed(0)} scripts/s)`);
  console.log(`  ratio (ceiling time / our time): first ${ratio(ceiling, first)}, second ${ratio(ceiling, second)}`);
  const storm = `boot storm: ${NODES} nodes x ${SCRIPTS} scripts`;
  const xargsTime = `\`xargs -P ${2 * cpus().length}\`, same scripts: ${ceiling.toFixed(2)} s`;
  rows.push([`${storm}, first boot (auto-registers every node)`, `${first.toFixed(2)} s`, xargsTime, ratio(ceiling, first)]);
  rows.push([`${storm}, second boot`, `${second.toFixed(2)} s`, xargsTime, ratio(ceiling, second)]);

  if (!NGINX) {
    console.log('nginx not installed (apt-get install nginx-light): getfile and small-file comparisons skipped');
    results.nonDefault('nginx not installed: getfile and small files not measured');
    writeResults();
    return;
  }
  const peer = await freePort();
  await startNginx(peer);
  // The same daemon with sendfile off (large buffered reads in Node), to show what zero-copy brings.
  const js = await freePort();
  await startProvisiond(js, false);
  // Warm the page cache and the checksum cache (computed once per file version) before timing.
  curlOnce(ours, '/files/big.img');
  curlOnce(js, '/files/big.img');
  curlOnce(peer, '/files/big.img');

  console.log(`2. getfile ${MB} MiB`);
  const single = { ours: 0, js: 0, peer: 0 };
  for (let i = 0; i < 3; i++) {
    single.ours = Math.max(single.ours, curlOnce(ours, '/files/big.img'));
    single.js = Math.max(single.js, curlOnce(js, '/files/big.img'));
    single.peer = Math.max(single.peer, curlOnce(peer, '/files/big.img'));
  }
  console.log(
    `  one client (best of 3): provisiond ${fmtRate(single.ours)} (sendfile off: ${fmtRate(single.js)}), nginx ${fmtRate(single.peer)}, ratio ${ratio(single.ours, single.peer)} (sendfile off: ${ratio(single.js, single.peer)})`,
  );
  const many = { ours: await curlMany(ours, '/files/big.img', CLIENTS), js: await curlMany(js, '/files/big.img', CLIENTS), peer: await curlMany(peer, '/files/big.img', CLIENTS) };
  console.log(
    `  ${CLIENTS} clients: provisiond ${fmtRate(many.ours)} (sendfile off: ${fmtRate(many.js)}), nginx ${fmtRate(many.peer)}, ratio ${ratio(many.ours, many.peer)} (sendfile off: ${ratio(many.js, many.peer)})`,
  );
  const floor = 1.25e9;
  const bold = (s: string) => `**${s}**`;
  rows.push([`getfile ${MB} MiB, one client`, fmtRate(single.ours), `nginx ${fmtRate(single.peer)}`, bold(ratio(single.ours, single.peer))]);
  rows.push([`getfile ${MB} MiB, ${CLIENTS} clients`, fmtRate(many.ours), `nginx ${fmtRate(many.peer)}`, bold(ratio(many.ours, many.peer))]);
  rows.push([`getfile ${MB} MiB, one client, \`http.sendfile: false\``, fmtRate(single.js), `nginx ${fmtRate(single.peer)}`, ratio(single.js, single.peer)]);
  rows.push([`getfile ${MB} MiB, ${CLIENTS} clients, \`http.sendfile: false\``, fmtRate(many.js), `nginx ${fmtRate(many.peer)}`, ratio(many.js, many.peer)]);
  for (const [what, v] of [['one client', single.ours], [`${CLIENTS} clients`, many.ours]] as const) {
    if (v < floor) console.log(`  WARNING: ${what} below 10 GbE line rate (1.25 GB/s): ${fmtRate(v)}`);
    if (v < floor) notes.push(`**Warning**: getfile, ${what}, below 10 GbE line rate (1.25 GB/s): ${fmtRate(v)}.`);
  }

  console.log(`3. small files (4 KiB, ${CLIENTS} keep-alive connections, ${SECONDS} s each)`);
  const small = { ours: await smallFiles(ours), peer: await smallFiles(peer) };
  console.log(`  provisiond ${small.ours.toFixed(0)} req/s, nginx ${small.peer.toFixed(0)} req/s, ratio ${ratio(small.ours, small.peer)}`);
  rows.push(['4 KiB files', `${small.ours.toFixed(0)} req/s`, `nginx ${small.peer.toFixed(0)} req/s`, ratio(small.ours, small.peer)]);
  writeResults();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench/http: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
