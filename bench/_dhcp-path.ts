/**
 * bench/_dhcp-path: an investigation tool, not a race (no peer; `npm run bench` skips files whose name
 * starts with `_`). The daemon's whole DHCP path in this process, without sockets: the real dhcp
 * service (registry on SQLite with its lease journal and writer thread, the boot policy, the timeline
 * recorder), fed DISCOVERs and then the REQUESTs of their OFFERs through the server's receive path,
 * 32 requests per turn of the event loop, the replies taken where the socket would have sent them.
 * Prints the CPU per DORA of each thread of the process (the event loop, V8's helper threads, the
 * writer thread), with the kernel's UDP work left out: what a change to the JavaScript saves shows
 * here without perfdhcp's noise. Compare two versions by running each several times, alternating.
 *
 * Env: DHCP_PATH_N (DORAs, default 20000, of which the first 2,000 warm up), DHCP_PATH_DURABILITY
 * (process or fsync, default process), DHCP_PATH_DIST=1 (the build in dist/, as `provisiond serve`
 * runs: under tsx, src/ pays for esbuild's function names), DHCP_PATH_HEAP=1 (also the bytes
 * allocated per DORA, by function: V8's sampling heap profiler, which slows the run down).
 *
 * Run as root in a network namespace of its own (the dhcp service binds port 67 on `lo`):
 * `unshare -n sh -c 'ip link set lo up; node --import tsx bench/_dhcp-path.ts'`.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageType } from '../src/protocol/dhcp/constants.js';
import { encodePacket, type DhcpPacket } from '../src/protocol/dhcp/packet.js';
import type { DhcpService } from '../src/daemon/dhcp.js';
import { clientPacket } from '../test/dhcp/packets.js';

const N = Number(process.env.DHCP_PATH_N ?? 20000);
const WARM = 2000;
const durability = process.env.DHCP_PATH_DURABILITY ?? 'process';
const root = process.env.DHCP_PATH_DIST === '1' ? '../dist' : '../src';
const load = async <T>(path: string): Promise<T> => (await import(`${root}/${path}`)) as T;
const { loadConfig } = await load<typeof import('../src/config/load.js')>('config/load.js');
const { startDhcp } = await load<typeof import('../src/daemon/dhcp.js')>('daemon/dhcp.js');
const { createTimelineRecorder } = await load<typeof import('../src/daemon/timeline.js')>('daemon/timeline.js');
const { createLogger } = await load<typeof import('../src/log/logger.js')>('log/logger.js');
const { openRegistry } = await load<typeof import('../src/registry/open.js')>('registry/open.js');

const dir = mkdtempSync(join(tmpdir(), 'pvd-dhcp-path-'));
writeFileSync(
  join(dir, 'provisiond.yaml'),
  `statedir: ${dir}\ndatabase: sqlite:provisiond.db\nmaster: 10.100.0.1\ndefaults:\n  autoRegister: false\ndhcp:\n  enabled: true\n  interface: lo\n` +
    `  range: [10.100.1.0, 10.100.255.254]\n  netmask: 255.255.0.0\n  leaseTime: 43200\n  durability: ${durability}\n`,
);
const config = loadConfig(join(dir, 'provisiond.yaml'));
const log = createLogger({ level: 'warn', format: 'json' });
const registry = await openRegistry(config, log, { cache: true, leaseJournal: true });
const svc = (await startDhcp({ config, log, registry, services: new Map(), timeline: createTimelineRecorder(registry, log.child({ component: 'timeline' })) })) as DhcpService;

// The server's first listener, its socket's sends taken over: OFFERs are answered, ACKs counted.
interface Inside {
  listeners: Array<{ socket: { sendPacket(p: DhcpPacket, port: number, address: string): void } }>;
  receive(l: unknown, msg: Buffer, from: { address: string; port: number }): void;
}
const server = svc.server as unknown as Inside;
const listener = server.listeners[0]!;
const offers: DhcpPacket[] = [];
let acks = 0;
listener.socket.sendPacket = (p) => {
  const type = p.options.get(53)?.[0];
  if (type === MessageType.OFFER) offers.push(p);
  else if (type === MessageType.ACK) acks++;
};
const from = { address: '0.0.0.0', port: 68 };
const mac = (i: number) => `02:00:${[24, 16, 8, 0].map((s) => ((i >>> s) & 255).toString(16).padStart(2, '0')).join(':')}`;
const discovers = Array.from({ length: N }, (_, i) => encodePacket(clientPacket({ mac: mac(i), type: MessageType.DISCOVER, xid: i })));
const turn = () => new Promise<void>((r) => setImmediate(r));

async function run(from_: number, to: number): Promise<void> {
  for (let i = from_; i < to; i += 32) {
    for (let j = i; j < Math.min(to, i + 32); j++) server.receive(listener, discovers[j]!, from);
    await turn();
    await turn();
    for (const o of offers.splice(0)) {
      const req = clientPacket({ mac: mac(o.xid), type: MessageType.REQUEST, xid: o.xid, requested: o.yiaddr, serverId: '10.100.0.1' });
      server.receive(listener, encodePacket(req), from);
    }
    await turn();
    await turn();
  }
}

/** CPU time of each thread of this process so far, µs, by `tid comm`. */
function threads(): Map<string, number> {
  const m = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    const comm = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
    m.set(`${tid} ${comm}${Number(tid) === process.pid ? ' (event loop)' : ''}`, Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1000);
  }
  return m;
}

await run(0, WARM);
await new Promise((r) => setTimeout(r, 300));
const session = new Session();
if (process.env.DHCP_PATH_HEAP === '1') {
  session.connect();
  await session.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
}
const before = threads();
const t0 = performance.now();
const acks0 = acks;
await run(WARM, N);
while (acks - acks0 < N - WARM && performance.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 5));
const wall = performance.now() - t0;
const after = threads();
const n = acks - acks0;
console.log(`bench/_dhcp-path: ${n} DORA (${durability}, ${root.slice(3)}) in ${wall.toFixed(0)} ms`);
let total = 0;
for (const [k, v] of after) {
  const us = (v - (before.get(k) ?? 0)) / n;
  total += us;
  if (us >= 0.5) console.log(`  ${k.padEnd(28)} ${us.toFixed(1)} µs/DORA`);
}
console.log(`  ${'all threads'.padEnd(28)} ${total.toFixed(1)} µs/DORA`);
if (process.env.DHCP_PATH_HEAP === '1') {
  type Node = { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: Node[] };
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: Node } };
  const by = new Map<string, number>();
  const walk = (node: Node): void => {
    const f = node.callFrame;
    const k = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(src|dist|node_modules|test)\//, '$1/')}:${f.lineNumber + 1}`;
    by.set(k, (by.get(k) ?? 0) + node.selfSize);
    node.children.forEach(walk);
  };
  walk(profile.head);
  console.log(`  allocated: ${Math.round([...by.values()].reduce((a, b) => a + b, 0) / n)} bytes per DORA; the most by function:`);
  for (const [k, v] of [...by].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${String(Math.round(v / n)).padStart(7)}  ${k}`);
}
await svc.close();
await registry.close();
rmSync(dir, { recursive: true, force: true });
// No ACK at all: the path is broken, not fast.
process.exit(n > 0 ? 0 : 1);
