/**
 * A real `provisiond serve` for the fuzz tests: HTTP, TFTP and the Perceus protocol on loopback
 * ports, the metrics listener (its counters say what the daemon made of each input), and what a leak
 * looks like from outside: the process's open descriptors and resident memory.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ServeProcess } from './daemon.js';
import { CLI } from './paths.js';
import { parsePromText, sumOf, type Family } from './prom-text.js';
import { sleep } from './sleep.js';
import { makeStatedir, type FileSpec, type Teardown } from './statedir.js';

/** A TCP port free on 127.0.0.1 now (UDP and TCP ports of the same number are free together here). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface FuzzDaemon {
  serve: ServeProcess;
  statedir: string;
  http: string;
  httpPort: number;
  tftpPort: number;
  perceusPort: number;
  /** Parsed metrics. */
  metrics(): Promise<Map<string, Family>>;
  /** Sum of every series of `sample` whose labels include `labels`. */
  count(sample: string, labels?: Record<string, string>): Promise<number>;
  /** Open file descriptors of the daemon. */
  fds(): number;
  /** Of those, sockets (what a leaked connection or transfer holds). */
  sockets(): number;
  /** Resident memory of the daemon, bytes. */
  rss(): number;
}

export async function startFuzzDaemon(t: Teardown, files: Record<string, FileSpec>, extra = ''): Promise<FuzzDaemon> {
  const statedir = makeStatedir(t, files, { prefix: 'pvd-fuzz-', layout: true });
  const [httpPort, tftpPort, perceusPort, metricsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const configPath = join(statedir, 'provisiond.yaml');
  writeFileSync(
    configPath,
    [
      `statedir: ${statedir}`,
      'master: 127.0.0.1',
      `http: { listen: 127.0.0.1, port: ${httpPort} }`,
      `tftp: { listen: 127.0.0.1, port: ${tftpPort}, timeout: 1, retries: 2 }`,
      'dhcp: { enabled: false }',
      `perceus: { enabled: true, listen: 127.0.0.1, port: ${perceusPort} }`,
      'api: { enabled: false }',
      `metrics: { enabled: true, listen: 127.0.0.1, port: ${metricsPort} }`,
      'defaults: { autoRegister: false }',
      extra,
    ].join('\n'),
  );
  // The metrics listener wants a viewer token, as a Prometheus server has one.
  const created = execFileSync(process.execPath, [CLI, '--config', configPath, 'token', 'create', 'fuzz', '--role', 'viewer'], { encoding: 'utf8' });
  const token = /\S{32,}/.exec(created)?.[0];
  if (!token) throw new Error(`no token in: ${created}`);
  const serve = await ServeProcess.start({ configPath, logFile: join(statedir, 'serve.log') });
  t.teardown(() => serve.stop());
  const metrics = async () => parsePromText(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { headers: { Authorization: `Bearer ${token}` } })).text());
  // The metrics listener starts last: ready once it answers.
  for (let i = 0; i < 200; i++) {
    if (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { headers: { Authorization: `Bearer ${token}` } }).then((r) => r.ok, () => false)) break;
    await sleep(50);
  }
  const pid = serve.child.pid!;
  return {
    serve,
    statedir,
    http: `http://127.0.0.1:${httpPort}`,
    httpPort,
    tftpPort,
    perceusPort,
    metrics,
    count: async (sample, labels = {}) => sumOf(await metrics(), sample, labels),
    fds: () => readdirSync(`/proc/${pid}/fd`).length,
    sockets: () =>
      readdirSync(`/proc/${pid}/fd`).filter((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
        } catch {
          return false; // closed meanwhile
        }
      }).length,
    rss: () => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024,
  };
}

/** Waits until `get()` reaches `want` (polling), or `ms` passed; returns the last value. */
export async function until(get: () => Promise<number> | number, want: (v: number) => boolean, ms: number, every = 100): Promise<number> {
  const end = Date.now() + ms;
  let v = await get();
  while (!want(v) && Date.now() < end) {
    await sleep(every);
    v = await get();
  }
  return v;
}
