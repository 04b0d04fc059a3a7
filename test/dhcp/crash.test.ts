/**
 * A DHCPACK is a promise: the real dhcp service (registry on SQLite, the daemon's own code) in a
 * network namespace, clients in another, and `kill -9` of the daemon by the client the moment the
 * last ACK arrives (no flush, no grace), or in the middle of a storm. Started again on the same
 * database, every client that was ACKed gets its own address back (INIT-REBOOT -> ACK), no new client
 * is offered any of them, and every auto-registered node keeps the name its ACK carried.
 */
import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DhcpDaemon } from '../lib/daemon.js';
import { needRoot } from '../lib/gate.js';
import { testLab } from '../lib/netns.js';
import { makeStatedir } from '../lib/statedir.js';
import { scriptedClient } from './peers.js';

if (!needRoot(t)) process.exit(0);

const id = process.pid;
const lab = testLab(t, 'pvd-crash', { ipv6: false });
const dir = makeStatedir(t, {}, { prefix: 'pvd-dhcp-crash-' });

const [S, C] = lab.nss('s', 'c');
const vs = `vc${id}`;
lab.link({ ns: S, dev: vs, addr: '10.81.0.1/16' }, { ns: C, dev: 'eth0' });
const CLIENT_ADDR = '10.81.255.250/16';

interface StormResult {
  acked: Array<[string, string, string | null]>;
  offered: Array<[string, string]>;
  killedAt: number | null;
  sent: number;
  ms: number;
}

function writeConfig(name: string, dhcp: string, extra = ''): { config: string; db: string } {
  const config = join(dir, `${name}.yaml`);
  writeFileSync(config, `statedir: ${dir}\ndatabase: sqlite:${name}.db\nmaster: 10.81.0.1\n${extra}dhcp:\n  enabled: true\n  interface: ${vs}\n  netmask: 255.255.0.0\n  leaseTime: 600\n${dhcp}`);
  return { config, db: join(dir, `${name}.db`) };
}

const macs = (run: number, n: number, base = 0) =>
  Array.from({ length: n }, (_, i) => `52:54:${run.toString(16).padStart(2, '0')}:00:${((base + i) >> 8).toString(16).padStart(2, '0')}:${((base + i) & 255).toString(16).padStart(2, '0')}`.toUpperCase());

const storm = (job: Record<string, unknown>) => (scriptedClient(C, { storm: { to: '255.255.255.255', retryMs: 1000, ...job } }, CLIENT_ADDR) as StormResult[])[0]!;
const reboot = (leases: Array<[string, string]>) =>
  scriptedClient(C, { reboot: { leases, to: '255.255.255.255', waitMs: 1500, window: 32 } }, CLIENT_ADDR) as Array<[string, 'ack' | 'nak' | null, string | null]>;

/** The leases and node names in the database file, read by another connection. */
function stored(db: string): { leases: Map<string, { address: string; state: string }>; names: Map<string, string> } {
  const d = new Database(db, { readonly: true });
  try {
    const leases = new Map(d.prepare<[], { hwaddr: string; address: string; state: string }>('SELECT hwaddr, address, state FROM leases').all().map((r) => [r.hwaddr, r] as const));
    const names = new Map(d.prepare<[], { nodeid: string; name: string }>('SELECT nodeid, name FROM nodes').all().map((r) => [r.nodeid, r.name] as const));
    return { leases, names };
  } finally {
    d.close();
  }
}

async function killed(daemon: DhcpDaemon): Promise<string | null> {
  if (daemon.proc.exitCode === null && daemon.proc.signalCode === null) await once(daemon.proc, 'exit');
  return daemon.proc.signalCode;
}

/**
 * A pool of exactly 100 addresses, 100 clients booting at once (auto-registered at their DISCOVER),
 * SIGKILL the moment the 100th ACK arrives, then a restart on the same database.
 */
async function fullPoolCrash(t: Test, run: number, durability: 'fsync' | 'process'): Promise<void> {
  const { config, db } = writeConfig(`pool-${durability}-${run}`, `  range: [10.81.0.10, 10.81.0.109]\n  durability: ${durability}\n`, `defaults:\n  nodeName: r${run}n###\n`);
  const clients = macs(run, 100);
  const first = await DhcpDaemon.start(lab, S, config);
  const r = storm({ macs: clients, rate: 0, waitMs: 8000, killPid: first.proc.pid, killAfterAcks: 100 });
  t.equal(r.acked.length, 100, `all 100 clients were ACKed before the kill (in ${r.ms} ms)`);
  t.equal(await killed(first), 'SIGKILL', 'the daemon died by SIGKILL right after the last ACK');

  const { names } = stored(db);
  const renamed = r.acked.filter(([mac, , hostname]) => names.get(mac) !== hostname);
  t.same(renamed, [], 'every node keeps the name its ACK carried');
  t.equal(new Set(names.values()).size, names.size, 'no name twice');

  const daemon = await DhcpDaemon.start(lab, S, config);
  try {
    // The last leases were in the lease journal only: the restart applied it to the tables.
    const { leases } = stored(db);
    const lost = r.acked.filter(([mac, addr]) => leases.get(mac)?.address !== addr || leases.get(mac)?.state !== 'bound');
    t.same(lost, [], 'every ACKed lease is in the database once the daemon started again');
    const back = reboot(r.acked.map(([mac, addr]) => [mac, addr]));
    const wrong = back.filter(([mac, answer, addr]) => answer !== 'ack' || addr !== r.acked.find((a) => a[0] === mac)![1]);
    t.same(wrong, [], 'after the restart every client gets its own address back (INIT-REBOOT -> ACK)');
    const newcomers = storm({ macs: macs(run, 3, 0x1000), rate: 0, waitMs: 1500 });
    t.same(newcomers.offered, [], 'no new client is offered an address: all 100 are still leased');
    t.equal((await daemon.stats()).leases, 100, 'the restarted server holds the 100 leases');
  } finally {
    await daemon.stop();
  }
}

t.test('kill -9 right after the last ACK of a full pool, five times in a row: no ACKed lease lost', async (t) => {
  for (let run = 1; run <= 5; run++) await t.test(`run ${run} (durability fsync)`, (t) => fullPoolCrash(t, run, 'fsync'));
});

t.test('dhcp.durability: process survives kill -9 the same way', async (t) => {
  for (let run = 6; run <= 7; run++) await t.test(`run ${run} (durability process)`, (t) => fullPoolCrash(t, run, 'process'));
});

t.test('kill -9 in the middle of a 2,000 DORA/s storm: every lease a client saw ACKed survives', async (t) => {
  const { config, db } = writeConfig('storm', '  range: [10.81.1.0, 10.81.200.255]\n', 'defaults:\n  autoRegister: false\n');
  const first = await DhcpDaemon.start(lab, S, config);
  // 6,000 new clients over 3 s; the daemon is killed at the 300th ACK (about 1.5 s in on a quiet
  // machine), or 2.9 s in on a loaded one that answers slower: either way while DISCOVERs still come.
  const r = storm({ macs: macs(0x40, 6000), rate: 2000, waitMs: 1000, killPid: first.proc.pid, killAfterAcks: 300, killAfterMs: 2900 });
  t.equal(await killed(first), 'SIGKILL', `killed ${r.killedAt} ms into the storm`);
  t.ok(Number(r.killedAt) < 3000, 'in the middle of the storm');
  t.ok(r.acked.length >= 100, `${r.acked.length} clients ACKed before the kill (${r.offered.length} offers, ${r.sent} DISCOVERs)`);
  const daemon = await DhcpDaemon.start(lab, S, config);
  try {
    const { leases } = stored(db);
    const lost = r.acked.filter(([mac, addr]) => leases.get(mac)?.address !== addr);
    t.same(lost, [], 'every ACKed lease is in the database once the daemon started again (its lease journal applied)');
    const back = reboot(r.acked.map(([mac, addr]) => [mac, addr]));
    const own = new Map(r.acked.map(([mac, addr]) => [mac, addr]));
    const wrong = back.filter(([mac, answer, addr]) => answer !== 'ack' || addr !== own.get(mac));
    t.same(wrong.slice(0, 10), [], `all ${back.length} ACKed clients get their own address back`);
    const taken = new Set(own.values());
    const newcomers = storm({ macs: macs(0x41, 200), rate: 0, waitMs: 2000 });
    t.ok(newcomers.acked.length > 0, 'new clients are served');
    t.same(
      newcomers.offered.filter(([, addr]) => taken.has(addr)),
      [],
      'no new client is offered an address an ACKed client holds',
    );
  } finally {
    await daemon.stop();
  }
});
