/**
 * A DHCPACK is a promise with the registry in PostgreSQL too: the real dhcp service (config ->
 * openRegistry -> startDhcp) in a network namespace with `database: postgres://...` (a real
 * PostgreSQL from test/lib/postgres.ts), 30 clients booting at once, and `kill -9` of the daemon the
 * moment the last ACK arrives. Every ACKed lease is then in PostgreSQL, every auto-registered node
 * keeps the name its ACK carried, and a restarted server gives every client its own address back.
 */
import t from 'tap';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DhcpDaemon } from '../lib/daemon.js';
import { needRoot } from '../lib/gate.js';
import { testLab } from '../lib/netns.js';
import { postgresMissing, startPostgres } from '../lib/postgres.js';
import { makeStatedir } from '../lib/statedir.js';
import { scriptedClient } from './peers.js';

if (!needRoot(t)) process.exit(0);
const missing = postgresMissing();
/**
 * Clients booting at once, in a pool of 100. Not a full pool: with every lookup a round trip to
 * PostgreSQL a loaded machine answers a crowd slowly, offers outlive their hold and clients are
 * NAKed and start over (a latency matter for the cache of the multi-server part, not durability).
 */
const N = 30;

t.test('kill -9 right after the last ACK, registry in PostgreSQL: no ACKed lease lost, all given back', { skip: missing }, async (t) => {
  const pg = await startPostgres(t);
  const url = await pg.createDatabase(t, 'crash');
  const id = process.pid;
  const lab = testLab(t, 'pvd-pgcrash', { ipv6: false });
  const dir = makeStatedir(t, {}, { prefix: 'pvd-dhcp-pgcrash-' });
  const [S, C] = lab.nss('s', 'c');
  const vs = `vp${id}`;
  lab.link({ ns: S, dev: vs, addr: '10.82.0.1/16' }, { ns: C, dev: 'eth0' });
  const CLIENT_ADDR = '10.82.255.250/16';
  const config = join(dir, 'pg.yaml');
  writeFileSync(
    config,
    `statedir: ${dir}\ndatabase: "${url}"\nmaster: 10.82.0.1\ndefaults:\n  nodeName: p###\n` +
      `dhcp:\n  enabled: true\n  interface: ${vs}\n  netmask: 255.255.0.0\n  leaseTime: 600\n  range: [10.82.0.10, 10.82.0.109]\n`,
  );
  const clients = Array.from({ length: N }, (_, i) => `52:54:50:00:00:${i.toString(16).padStart(2, '0')}`.toUpperCase());

  const first = await DhcpDaemon.start(lab, S, config);
  const [r] = scriptedClient(C, { storm: { to: '255.255.255.255', retryMs: 1000, macs: clients, rate: 0, waitMs: 20000, killPid: first.proc.pid, killAfterAcks: N } }, CLIENT_ADDR) as Array<{
    acked: Array<[string, string, string | null]>;
    ms: number;
  }>;
  t.equal(r!.acked.length, N, `all ${N} clients were ACKed before the kill (in ${r!.ms} ms)`);
  if (r!.acked.length < N) {
    t.comment(JSON.stringify(await first.stats()));
    first.proc.kill('SIGKILL');
  }
  if (first.proc.exitCode === null && first.proc.signalCode === null) await once(first.proc, 'exit');
  t.equal(first.proc.signalCode, 'SIGKILL', 'the daemon died by SIGKILL right after the last ACK');

  const leases = new Map((await pg.query('SELECT hwaddr, address, state FROM leases', 'crash')).rows.map((l: { hwaddr: string; address: string; state: string }) => [l.hwaddr, l]));
  const names = new Map((await pg.query('SELECT nodeid, name FROM nodes', 'crash')).rows.map((n: { nodeid: string; name: string }) => [n.nodeid, n.name]));
  const lost = r!.acked.filter(([mac, addr]) => leases.get(mac)?.address !== addr || leases.get(mac)?.state !== 'bound');
  t.same(lost, [], 'every ACKed lease is in PostgreSQL');
  t.same(r!.acked.filter(([mac, , hostname]) => names.get(mac) !== hostname), [], 'every node keeps the name its ACK carried');
  t.equal(new Set([...leases.values()].map((l) => l.address)).size, leases.size, 'no address twice');

  const daemon = await DhcpDaemon.start(lab, S, config);
  try {
    const back = scriptedClient(C, { reboot: { leases: r!.acked.map(([mac, addr]) => [mac, addr]), to: '255.255.255.255', waitMs: 1500, window: 32 } }, CLIENT_ADDR) as Array<
      [string, 'ack' | 'nak' | null, string | null]
    >;
    const own = new Map(r!.acked.map(([mac, addr]) => [mac, addr]));
    t.same(back.filter(([mac, answer, addr]) => answer !== 'ack' || addr !== own.get(mac)), [], 'after the restart every client gets its own address back (INIT-REBOOT -> ACK)');
    t.equal((await daemon.stats()).leases, N, `the restarted server holds the ${N} leases`);
  } finally {
    await daemon.stop();
  }
});
