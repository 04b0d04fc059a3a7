/**
 * bench/registry: 10,000 nodes. Import time, `node list` time, lookups by MAC per second (the DHCP
 * and HTTP servers do one per packet/request; goal >= 100,000/s), and the resident memory of a
 * process holding them. Peers measured in the same run: the sqlite3 command-line tool for import
 * and listing (the floor of any SQLite-based tool), and a lookup that queries SQLite every time
 * (what a registry without an in-memory index does).
 *
 *   node --import tsx bench/registry.ts [--nodes N]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { silentLogger } from '../src/log/logger.js';
import { SqliteRegistry } from '../src/registry/sqlite/registry.js';
import { BenchResults } from './lib/results.js';

/** The table of bench/RESULTS.md: the rows printed by row(). */
const rows: string[][] = [];

const args = process.argv.slice(2);
if (args[0] === '--child-rss') await childRss(args[1]!);
else await main(Number(args[args.indexOf('--nodes') + 1]) || 10_000);

async function main(N: number): Promise<void> {
  const results = new BenchResults('registry');
  if (N !== 10_000) results.nonDefault(`--nodes ${N} (default 10,000)`);
  const dir = mkdtempSync(join(tmpdir(), 'pvd-bench-registry-'));
  try {
    const mac = (i: number) => `52:54:00:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`.toUpperCase();
    const ethers = join(dir, 'ethers');
    writeFileSync(ethers, Array.from({ length: N }, (_, i) => `${mac(i)} n${String(i).padStart(5, '0')}`).join('\n') + '\n');
    const csv = join(dir, 'nodes.csv');
    writeFileSync(csv, Array.from({ length: N }, (_, i) => `${mac(i)},n${String(i).padStart(5, '0')}`).join('\n') + '\n');
    const config = join(dir, 'provisiond.yaml');
    writeFileSync(config, `statedir: ${dir}\n`);
    const cli = (...a: string[]) => {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, ['bin/provisiond.js', '--config', config, ...a], { encoding: 'utf8', maxBuffer: 64 << 20 });
      if (r.status !== 0) throw new Error(`provisiond ${a.join(' ')}: ${r.stderr}`);
      return { ms: performance.now() - t0, out: r.stdout };
    };
    const sqlite = (db: string, ...a: string[]) => {
      const t0 = performance.now();
      const out = execFileSync('sqlite3', [db, ...a], { encoding: 'utf8', maxBuffer: 64 << 20 });
      return { ms: performance.now() - t0, out };
    };
    const startup = cli('node', 'list');
    console.log(`registry bench: ${N} nodes (CLI start-up with an empty registry: ${startup.ms.toFixed(0)} ms)`);

    // Import: the whole CLI command vs sqlite3 importing the same list into a bare table.
    const imp = cli('node', 'import', ethers);
    const peerDb = join(dir, 'peer.db');
    sqlite(peerDb, 'PRAGMA journal_mode=WAL; CREATE TABLE nodes (nodeid TEXT UNIQUE, name TEXT UNIQUE);');
    const peerImp = sqlite(peerDb, '-cmd', '.mode csv', `.import ${csv} nodes`);
    row('import (whole command)', imp.ms, 'ms', peerImp.ms, 'sqlite3 .import');

    // Listing: `node list` piped vs sqlite3 printing the same table.
    const list = cli('node', 'list');
    if (list.out.split('\n').length - 1 !== N) throw new Error(`node list printed ${list.out.split('\n').length - 1} lines`);
    const peerList = sqlite(peerDb, 'SELECT nodeid, name FROM nodes');
    row('node list (whole command)', list.ms, 'ms', peerList.ms, 'sqlite3 SELECT');

    // The same work in-process (without the CLI's start-up: loading Node, tsx and the modules).
    const inproc = join(dir, 'inproc.db');
    const fresh = SqliteRegistry.open({ path: inproc, logger: silentLogger() });
    const list10k = Array.from({ length: N }, (_, i) => ({ name: `n${String(i).padStart(5, '0')}`, nodeid: mac(i) }));
    let t0 = performance.now();
    await fresh.importNodes(list10k);
    const impIn = performance.now() - t0;
    await fresh.close();
    const peerDb2 = join(dir, 'peer2.db');
    sqlite(peerDb2, 'PRAGMA journal_mode=WAL; CREATE TABLE nodes (nodeid TEXT UNIQUE, name TEXT UNIQUE);');
    row('import (in-process)', impIn, 'ms', sqlite(peerDb2, '-cmd', '.mode csv', `.import ${csv} nodes`).ms, 'sqlite3 .import');
    await import('../src/cli/main.js'); // loading the modules is start-up, measured above
    t0 = performance.now();
    const printed = await listInProcess(config);
    const listIn = performance.now() - t0;
    if (printed !== N) throw new Error(`node list printed ${printed} lines`);
    row('node list (in-process)', listIn, 'ms', peerList.ms, 'sqlite3 SELECT');

    // Lookups by MAC in the daemon's process: our index vs querying SQLite per lookup.
    const dbPath = join(dir, 'var', 'provisiond.db');
    const reg = SqliteRegistry.open({ path: dbPath, logger: silentLogger() });
    const macs = Array.from({ length: N }, (_, i) => mac(i));
    const lookups = 500_000;
    t0 = performance.now();
    for (let i = 0; i < lookups; i++) if ((await reg.getNodeByNodeid(macs[(i * 7919) % N]!)) === null) throw new Error('lookup missed');
    const ours = lookups / ((performance.now() - t0) / 1000);
    const raw = new Database(dbPath, { readonly: true });
    const stmt = raw.prepare('SELECT * FROM nodes WHERE nodeid = ?');
    t0 = performance.now();
    for (let i = 0; i < lookups / 5; i++) if (stmt.get(macs[(i * 7919) % N]!) === undefined) throw new Error('sql lookup missed');
    const peer = lookups / 5 / ((performance.now() - t0) / 1000);
    raw.close();
    row('lookups by MAC', ours, '/s', peer, 'SELECT per lookup', true);
    const goal = `goal >= 100,000 lookups/s: ${ours >= 100_000 ? 'met' : 'NOT met'} (${(ours / 100_000).toFixed(1)}x the goal)`;
    console.log(`  ${goal}`);

    // Contacts (one per request), batched: how many per second the servers can record.
    t0 = performance.now();
    for (let i = 0; i < 100_000; i++) await reg.recordContact(macs[i % N]!, 'ready', '10.0.0.1');
    await reg.flush();
    const contacts = `recordContact + flush: ${fmt(100_000 / ((performance.now() - t0) / 1000))}/s`;
    console.log(`  ${contacts}`);
    // A boot storm of unknown machines: each auto-registration is its own transaction.
    const opts = { nodeName: 'a#####', firstNode: 0, totalNodes: null, group: 'cluster', vnfs: '', enabled: true, debug: 0 };
    t0 = performance.now();
    await Promise.all(Array.from({ length: 2000 }, (_, i) => reg.autoRegister(mac(N + i), opts)));
    const autoReg = `auto-registrations (2,000 unknown machines at once, ${N} nodes known): ${fmt(2000 / ((performance.now() - t0) / 1000))}/s`;
    console.log(`  ${autoReg}`);
    await reg.close();

    // Resident memory of a fresh process holding the registry (its own baseline subtracted).
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/registry.ts', '--child-rss', dbPath], { encoding: 'utf8' });
    const { base, loaded } = JSON.parse(r.stdout) as { base: number; loaded: number };
    const memory = `resident memory holding ${N} nodes: ${(loaded / 2 ** 20).toFixed(1)} MiB (${((loaded - base) / 2 ** 20).toFixed(1)} MiB for the registry, ${((loaded - base) / N).toFixed(0)} bytes/node)`;
    console.log(`  ${memory}`);
    results.write({
      name: 'registry',
      title:
        `\`bench/registry.ts\`: ${fmt(N)} nodes. Import and \`node list\` through the whole CLI command (start-up included: ` +
        `${startup.ms.toFixed(0)} ms with an empty registry) and in-process, against the sqlite3 command-line tool on a bare table; ` +
        `lookups by MAC from the daemon's in-memory index against a SQLite SELECT per lookup. ` +
        `Ratio: for times the peer's / ours, for rates ours / the peer's (> 1: we are faster).`,
      columns: [{ title: 'measure' }, { title: 'provisiond', align: 'right' }, { title: 'peer', align: 'right' }, { title: 'ratio', align: 'right' }],
      rows,
      notes: [`${goal[0]!.toUpperCase()}${goal.slice(1)}.`, `Also measured: ${contacts}; ${autoReg}; ${memory}.`],
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `node list` through the CLI's main() in this process, counting the lines it prints. */
async function listInProcess(config: string): Promise<number> {
  const { main } = await import('../src/cli/main.js');
  let lines = 0;
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    for (const c of String(chunk)) if (c === '\n') lines++;
    return true;
  }) as typeof process.stdout.write;
  try {
    if ((await main(['--config', config, 'node', 'list'])) !== 0) throw new Error('node list failed');
  } finally {
    process.stdout.write = write;
  }
  return lines;
}

async function childRss(dbPath: string): Promise<void> {
  global.gc?.();
  const base = process.memoryUsage().rss;
  const reg = SqliteRegistry.open({ path: dbPath, logger: silentLogger() });
  await reg.listNodes();
  const loaded = process.memoryUsage().rss;
  await reg.close();
  process.stdout.write(JSON.stringify({ base, loaded }));
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en');
}

/** One figure: ours, the peer's, and the ratio (for times, peer/ours: > 1 means we are faster). */
function row(what: string, ours: number, unit: string, peer: number, peerName: string, higherIsBetter = false): void {
  const ratio = higherIsBetter ? ours / peer : peer / ours;
  const f = (n: number) => (unit === 'ms' ? `${n.toFixed(0)} ms` : `${fmt(n)}${unit}`);
  console.log(`  ${what.padEnd(26)} ours ${f(ours).padStart(12)}   ${peerName} ${f(peer).padStart(12)}   ratio ${ratio.toFixed(2)}x`);
  rows.push([what, f(ours), `${peerName} ${f(peer)}`, `${ratio.toFixed(2)}x`]);
}
