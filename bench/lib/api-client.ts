/**
 * The HTTP side of bench/api, run as a child inside the lab's client namespace (where the nodes
 * are), one mode per run, its result as one JSON line on stdout:
 *
 * - `load URL TOKEN SECONDS CONCURRENCY`: CONCURRENCY keep-alive connections GET the URL for
 *   SECONDS (`{n}` in it: a random node name n00001..n10000 per request); requests/s and latency
 *   percentiles of the 2xx answers, the count of the others.
 * - `subscribe URL TOKEN EXPECT TIMEOUT_MS`: reads the event stream; prints `ready` once connected,
 *   then how many events came, the gaps, whether the ids ran without a hole, once EXPECT came or
 *   nothing new came for TIMEOUT_MS.
 * - `burst BASE MACS_FILE EVENTS_PER_NODE CONCURRENCY`: every node of the file posts
 *   EVENTS_PER_NODE boot-timeline reports to the node-facing port, as nodes booting at once do.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';

const [mode, ...args] = process.argv.slice(2);

function get(agent: Agent, url: URL, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function post(agent: Agent, url: URL, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function load(urlText: string, token: string, seconds: number, concurrency: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const headers = { authorization: `Bearer ${token}` };
  const latencies: number[] = [];
  let failed = 0;
  const statuses: Record<string, number> = {};
  const end = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const url = new URL(urlText.replace('{n}', `n${String(1 + Math.floor(Math.random() * 10_000)).padStart(5, '0')}`));
      const t0 = performance.now();
      const status = await get(agent, url, headers).catch(() => 0);
      const ms = performance.now() - t0;
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status >= 200 && status < 300) latencies.push(ms);
      else failed++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  agent.destroy();
  console.log(JSON.stringify({ ok: latencies.length, failed, statuses, rps: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), seconds: elapsed }));
}

async function subscribe(url: string, token: string, expect: number, quietMs: number): Promise<void> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  let received = 0;
  let gaps = 0;
  let holes = 0;
  let last = -1;
  let first = 0;
  let lastAt = 0;
  let buf = '';
  let ready = false;
  const decoder = new TextDecoder();
  const reader = res.body!.getReader();
  let lastChange = Date.now();
  const done = new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      if (received >= expect || Date.now() - lastChange > quietMs) {
        clearInterval(tick);
        resolve();
      }
    }, 50);
  });
  void (async () => {
    for (;;) {
      const { value, done: end } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (end) break;
      buf += decoder.decode(value, { stream: true });
      let cut: number;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        if (!ready && block.includes('provisiond events')) {
          ready = true;
          console.log('ready');
          lastChange = Date.now();
        }
        if (/^event: gap$/m.test(block)) gaps++;
        const id = /^id: \S+-(\d+)$/m.exec(block);
        if (id && /^event: timeline$/m.test(block)) {
          const seq = Number(id[1]);
          if (received === 0) first = Date.now();
          else if (seq !== last + 1) holes++;
          last = seq;
          received++;
          lastAt = Date.now();
          lastChange = Date.now();
        }
      }
    }
  })();
  await done;
  console.log(JSON.stringify({ received, gaps, holes, spanMs: lastAt - first }));
  process.exit(0);
}

async function burst(base: string, macsFile: string, perNode: number, concurrency: number): Promise<void> {
  const macs = readFileSync(macsFile, 'utf8').split('\n').filter(Boolean);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const stages = ['kernel', 'init', 'getfile', 'switch-root', 'ready'];
  const jobs: Array<[string, number]> = [];
  for (let i = 0; i < perNode; i++) for (const mac of macs) jobs.push([mac, i]);
  let next = 0;
  let ok = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < jobs.length) {
        const [mac, i] = jobs[next++]!;
        const status = await post(agent, new URL(`${base}/nodes/${mac}/events`), JSON.stringify({ stage: stages[i % stages.length], msg: `bench step ${i + 1}` })).catch(() => 0);
        if (status === 200) ok++;
        else failed++;
      }
    }),
  );
  agent.destroy();
  console.log(JSON.stringify({ ok, failed, ms: performance.now() - started }));
}

if (mode === 'load') await load(args[0]!, args[1]!, Number(args[2]), Number(args[3]));
else if (mode === 'subscribe') await subscribe(args[0]!, args[1]!, Number(args[2]), Number(args[3]));
else if (mode === 'burst') await burst(args[0]!, args[1]!, Number(args[2]), Number(args[3]));
else throw new Error(`api-client: unknown mode ${mode}`);
