/**
 * bench/nodescripts: a boot storm through the nodescript engine. 1,000 nodes ask for their `init`
 * script at once, 10 small executable scripts each. Printed from the same run:
 *  - engine: scripts/s through createNodescriptEngine (its spawner process, src/native/spawner.c),
 *    and the event loop's worst delay meanwhile (DHCP and TFTP share that loop);
 *  - raw: the same scripts spawned with child_process from this one thread, 4 in flight;
 *  - xargs: the machine's ceiling, the same scripts run by `xargs -P 4`;
 *  - the ratio engine / xargs (goal >= 0.8; xargs measured before and after, averaged).
 * Usage: node --import tsx bench/nodescripts.ts [NODES]
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createNodescriptEngine } from '../src/nodescript/index.js';
import { silentLogger } from '../src/log/logger.js';
import { BenchResults } from './lib/results.js';

const NODES = Number(process.argv[2] ?? 1000);
const SCRIPTS = 10;
const results = new BenchResults('nodescripts');
if (NODES !== 1000) results.nonDefault(`${NODES} nodes (default 1,000)`);
const dir = mkdtempSync(join(tmpdir(), 'pvd-bench-ns-'));
const all = join(dir, 'nodescripts/init/all');
mkdirSync(all, { recursive: true });
const paths: string[] = [];
for (let i = 0; i < SCRIPTS; i++) {
  const p = join(all, `${String(i * 10).padStart(2, '0')}-s${i}`);
  writeFileSync(p, `#!/bin/sh\necho "echo script ${i} for $NODENAME"\n`);
  chmodSync(p, 0o755);
  paths.push(p);
}
const env = { PATH: '/bin:/usr/bin:/sbin:/usr/sbin', NODENAME: 'n0000', STATE: 'init' };

async function engineRun(nodes: number): Promise<{ rate: number; lagMs: number; bytes: number }> {
  const engine = createNodescriptEngine({ statedir: dir, logger: silentLogger() });
  const master = { statedir: dir, vnfsMethod: 'http', vnfsMaster: '10.0.0.1:8080', vnfsPrefix: 'files' };
  // Warm-up (as a running daemon is): the spawner process is up, the code paths compiled.
  for await (const _ of engine.render({ state: 'init', nodename: 'warmup', nodeid: '52:54:00:00:00:00', group: 'compute', vnfs: '', enabled: true, debug: 0, ipaddr: '' }, master));
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const t0 = performance.now();
  let bytes = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: nodes }, async (_, i) => {
      const nodename = `n${String(i).padStart(4, '0')}`;
      const s = engine.render({ state: 'init', nodename, nodeid: '52:54:00:00:00:00', group: 'compute', vnfs: '', enabled: true, debug: 0, ipaddr: '' }, master, {
        onScript: (r) => void (r.ok || failed++),
      });
      for await (const c of s) bytes += (c as Buffer).length;
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  h.disable();
  await engine.close();
  if (failed > 0) throw new Error(`${failed} scripts failed in the engine run`);
  return { rate: (nodes * SCRIPTS) / secs, lagMs: h.max / 1e6, bytes };
}

async function rawRun(count: number, inFlight = 4): Promise<number> {
  let started = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    let done = 0;
    const next = () => {
      if (started >= count) return;
      const p = paths[started++ % SCRIPTS];
      const c = spawn(p, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      c.stdout.resume();
      c.stderr.resume();
      c.on('error', reject);
      c.on('close', () => {
        if (++done === count) resolve();
        else next();
      });
    };
    for (let i = 0; i < inFlight; i++) next();
  });
  return count / ((performance.now() - t0) / 1000);
}

async function xargsRun(count: number): Promise<number> {
  const list = Array.from({ length: count }, (_, i) => paths[i % SCRIPTS]).join('\n') + '\n';
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    // `sh SCRIPT` is what the kernel does for `#!/bin/sh` anyway; xargs cannot exec its input lines directly.
    const x = spawn('xargs', ['-P', '4', '-n', '1', '/bin/sh'], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    x.stdout.resume();
    x.on('error', reject);
    x.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`xargs exited ${code}`))));
    x.stdin.end(list);
  });
  return count / ((performance.now() - t0) / 1000);
}

/** The event loop's worst delay of an idle process on this machine now: the floor of the delay figures. */
async function idleLag(): Promise<number> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  await new Promise((r) => setTimeout(r, 3000));
  h.disable();
  return h.max / 1e6;
}

try {
  const total = NODES * SCRIPTS;
  const idle = await idleLag();
  console.log(`nodescripts: ${NODES} nodes x ${SCRIPTS} scripts = ${total} script runs; ${cpus().length} cores; engine concurrency ${4 * cpus().length}; idle event-loop max delay here ${idle.toFixed(1)} ms`);
  await engineRun(20); // warm-up: page cache
  // The machine is shared: xargs is measured right before and right after the engine, and averaged.
  const xargs = await xargsRun(total);
  console.log(`  xargs -P 4 (ceiling)          ${xargs.toFixed(0).padStart(6)} scripts/s`);
  const eng = await engineRun(NODES);
  console.log(`  engine                        ${eng.rate.toFixed(0).padStart(6)} scripts/s  event loop max delay ${eng.lagMs.toFixed(1)} ms`);
  const xargs2 = await xargsRun(total);
  console.log(`  xargs -P 4 again              ${xargs2.toFixed(0).padStart(6)} scripts/s`);
  const ceiling = (xargs + xargs2) / 2;
  const raw = await rawRun(Math.min(total, 3000));
  console.log(`  child_process, one thread     ${raw.toFixed(0).padStart(6)} scripts/s  (${(raw / ceiling).toFixed(2)}x xargs)`);
  const ratio = eng.rate / ceiling;
  console.log(`engine ${eng.rate.toFixed(0)}/s vs raw child_process ${raw.toFixed(0)}/s (${(eng.rate / raw).toFixed(2)}x) vs xargs -P 4 ${ceiling.toFixed(0)}/s`);
  console.log(`ratio engine / xargs: ${ratio.toFixed(2)} (goal >= 0.8) ${ratio >= 0.8 ? 'MET' : 'NOT MET'}`);
  const per = (n: number) => `${n.toFixed(0)} scripts/s`;
  results.write({
    name: 'nodescripts',
    title:
      `\`bench/nodescripts.ts\`: ${NODES} nodes ask for their \`init\` script at once, ${SCRIPTS} small scripts each (${total} script runs), ` +
      `through the nodescript engine (concurrency ${4 * cpus().length}) and through child_process from one thread (4 in flight), ` +
      `against \`xargs -P 4\` of the same scripts (the machine's ceiling; measured before and after the engine, averaged). Ratio: ours / xargs.`,
    columns: [{ title: 'measure' }, { title: 'provisiond', align: 'right' }, { title: 'xargs -P 4', align: 'right' }, { title: 'ratio', align: 'right' }],
    rows: [
      ['engine, boot storm', per(eng.rate), `${per(ceiling)} (${xargs.toFixed(0)}, ${xargs2.toFixed(0)})`, `**${ratio.toFixed(2)}x**`],
      ['child_process, one thread', per(raw), per(ceiling), `${(raw / ceiling).toFixed(2)}x`],
    ],
    notes: [
      `Goal engine / xargs >= 0.8: ${ratio >= 0.8 ? 'met' : 'NOT met'}. The event loop's worst delay during the engine's storm: ${eng.lagMs.toFixed(1)} ms (an idle process here: ${idle.toFixed(1)} ms).`,
      'The same kind of workload through the whole daemon is the boot storm row of [http](#http).',
    ],
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
