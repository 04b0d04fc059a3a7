/**
 * PostgreSQL stopped for 20 s under a real `provisiond serve` (DHCP on a veth in a namespace) while
 * its clients renew every 2 s: renewals (RENEWING and INIT-REBOOT) go on, each ACKed for no longer
 * than its committed lease had left (acknowledged means durable: nothing is promised that is not in
 * the database); machines that ask for a new lease meanwhile get none until the database is back,
 * then within seconds; the daemon does not crash, says so in its log, and every ACK any client got
 * is covered by the lease PostgreSQL holds afterwards.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServeProcess } from '../lib/daemon.js';
import { needRoot } from '../lib/gate.js';
import { testLab } from '../lib/netns.js';
import { REPO } from '../lib/paths.js';
import { postgresMissing, startPostgres } from '../lib/postgres.js';
import { sleep } from '../lib/sleep.js';
import { makeStatedir } from '../lib/statedir.js';
import { TS_NODE_ARGS } from '../ts-child.js';
import { scriptedClient } from './peers.js';

if (!needRoot(t)) process.exit(0);

const LEASE_S = 120;
const OUTAGE_MS = 20_000;

/**
 * Two outages: PostgreSQL stopped (its connections are cut: every query fails at once), and its host
 * vanished (SIGSTOP of every PostgreSQL process: connections stay open and unanswered, as after a
 * cut cable; only the daemon's liveness probe can tell, within PROBE_EVERY_MS + PROBE_DEADLINE_MS).
 * `settleMs`: from when on every renewal must be answered at once.
 */
const OUTAGES = [
  { kind: 'stopped', title: 'the database stopped for 20 s', settleMs: 1000 },
  { kind: 'vanished', title: 'the database host vanished for 20 s (no reset: SIGSTOP)', settleMs: 4000 },
] as const;

for (const outage of OUTAGES) {
  t.test(`${outage.title}: renewals go on, new clients wait, nothing lost`, { skip: postgresMissing() }, async (t) => {
    const pg = await startPostgres(t);
    const url = await pg.createDatabase(t, 'outage');
    const lab = testLab(t, `pvd-pg${outage.kind.slice(0, 3)}`, { ipv6: false });
    const dir = makeStatedir(t, {}, { prefix: 'pvd-dhcp-pgout-', layout: true });
    const [S, C] = lab.nss('s', 'c');
    const vs = `vo${outage.kind[0]}${process.pid}`;
    lab.link({ ns: S, dev: vs, addr: '10.83.0.1/16' }, { ns: C, dev: 'eth0' });
    const CLIENT_ADDR = '10.83.255.250/16';
    const configPath = join(dir, 'provisiond.yaml');
    writeFileSync(
      configPath,
      `statedir: ${dir}\ndatabase: "${url}"\nmaster: 10.83.0.1\ndefaults:\n  nodeName: o###\n` +
        `http:\n  listen: 127.0.0.1\n  port: 0\ntftp:\n  enabled: false\napi:\n  port: 0\n` +
        `dhcp:\n  enabled: true\n  interface: ${vs}\n  netmask: 255.255.0.0\n  leaseTime: ${LEASE_S}\n  range: [10.83.0.10, 10.83.0.109]\n`,
    );
    const daemon = await ServeProcess.start({ configPath, netns: { lab, ns: S } });
    t.teardown(() => daemon.stop(5000));

    // Ten machines with a lease, committed.
    const renewing = Array.from({ length: 10 }, (_, i) => `52:54:83:00:00:${i.toString(16).padStart(2, '0')}`.toUpperCase());
    const [boot] = scriptedClient(C, { storm: { to: '255.255.255.255', retryMs: 1000, macs: renewing, rate: 0, waitMs: 10_000 } }, CLIENT_ADDR) as Array<{ acked: Array<[string, string, string | null]> }>;
    t.equal(boot!.acked.length, 10, 'ten clients bound');
    const leases = boot!.acked.map(([mac, address]) => [mac, address] as [string, string]);
    const newcomers = ['52:54:83:00:01:01', '52:54:83:00:01:02', '52:54:83:00:01:03'];

    // The clients run on their own (the test stops and starts PostgreSQL meanwhile).
    lab.exec(C, 'ip', ['addr', 'add', CLIENT_ADDR, 'dev', 'eth0']);
    lab.exec(C, 'ip', ['route', 'replace', 'default', 'dev', 'eth0']);
    const jobFile = join(dir, 'outage-job.json');
    writeFileSync(jobFile, JSON.stringify({ outage: { renew: leases, fresh: newcomers, to: '255.255.255.255', ms: 40_000, everyMs: 2000, waitMs: 1500, freshAfterMs: 9000 } }));
    const clients = lab.run(C, process.execPath, [...TS_NODE_ARGS, join(REPO, 'test/dhcp/fixtures/dhcp-client.ts'), `@${jobFile}`], 90_000);
    await sleep(6000);
    const haltedAt = Date.now();
    if (outage.kind === 'stopped') pg.halt();
    else pg.freeze();
    const health = async () => {
      try {
        return JSON.parse(await lab.run(S, 'curl', ['-sS', `http://127.0.0.1:${daemon.port}/healthz`])) as { database: { reachable: boolean; since: number | null } };
      } catch (err) {
        // Say what the daemon was doing: running or not, and its last lines.
        const last = daemon.lines.slice(-15).map((l) => JSON.stringify(l)).join('\n');
        throw new Error(`/healthz did not answer (${(err as Error).message.trim()}); daemon ${daemon.running ? 'running' : `exited (${daemon.exitCode})`}; its last lines:\n${last}`, { cause: err });
      }
    };
    await sleep(5000);
    const down = await health();
    await sleep(OUTAGE_MS - 5000);
    if (outage.kind === 'stopped') pg.resume();
    else pg.thaw();
    const backAt = Date.now();
    t.comment(`PostgreSQL down from ${haltedAt} to ${backAt} (${backAt - haltedAt} ms)`);
    const [r] = JSON.parse(await clients) as Array<{ start: number; renewals: Array<[string, number, 'ack' | 'nak' | null, number | null]>; fresh: Array<[string, number | null, string | null]> }>;
    const at = (ms: number) => r!.start + ms;

    t.ok(daemon.running, 'the daemon did not crash');
    t.match(down.database, { reachable: false }, '/healthz says the database is out of reach');
    t.ok(down.database.since !== null && down.database.since >= haltedAt - 1000, 'since the stop');
    t.match((await health()).database, { reachable: true, since: null }, 'and reachable once it is back');
    // Renewals sent while the database was down (settleMs after the stop, a second before it was back).
    const during = r!.renewals.filter(([, ms]) => at(ms) > haltedAt + outage.settleMs && at(ms) < backAt - 1000);
    t.ok(during.length >= 10 * 6, `renewals asked during the outage (${during.length})`);
    t.same(during.filter(([, , answer]) => answer !== 'ack'), [], 'every one was ACKed within 1.5 s');
    t.ok(
      during.every(([, , , time]) => time !== null && time < LEASE_S && time >= LEASE_S - (OUTAGE_MS + 5000) / 1000),
      `for what its committed lease had left, no more (${[...new Set(during.map(([, , , s]) => s))].sort().join(', ')} s)`,
    );
    const before = r!.renewals.filter(([, ms]) => at(ms) < haltedAt - 1000);
    t.ok(before.length > 0 && before.every(([, , answer, time]) => answer === 'ack' && time === LEASE_S), 'before the outage: ACKed for the full lease time');
    const after = r!.renewals.filter(([, ms]) => at(ms) > backAt + 5000);
    t.ok(after.length > 0 && after.every(([, , answer, time]) => answer === 'ack' && time === LEASE_S), 'a few seconds after it: the full lease time again (committed)');

    // New machines: nothing while the database is down, a lease soon after it is back.
    for (const [mac, ms, address] of r!.fresh) {
      t.ok(ms !== null, `${mac} bound in the end (${address})`);
      if (ms === null) continue;
      t.ok(at(ms) >= backAt, `${mac}: no ACK while the database was down`);
      t.ok(at(ms) - backAt <= 10_000, `${mac}: bound ${at(ms) - backAt} ms after the database came back`);
    }

    // Every ACK a client got is covered by what PostgreSQL holds: acknowledged means durable.
    const rows = (await pg.query('SELECT hwaddr, address, state, expires FROM leases', 'outage')).rows as Array<{ hwaddr: string; address: string; state: string; expires: string }>;
    const held = new Map(rows.map((l) => [l.hwaddr, l]));
    const uncovered = r!.renewals
      .filter(([, , answer]) => answer === 'ack')
      .filter(([mac, ms, , time]) => {
        const l = held.get(mac);
        const address = leases.find(([m]) => m === mac)![1];
        return !l || l.address !== address || l.state !== 'bound' || Number(l.expires) < at(ms) + time! * 1000 - 2000;
      });
    t.same(uncovered, [], 'every ACKed renewal is covered by the lease in PostgreSQL');
    for (const [mac, , address] of r!.fresh) if (address) t.equal(held.get(mac)?.address, address, `${mac}'s lease is in PostgreSQL`);
    t.equal(new Set(rows.map((l) => l.address)).size, rows.length, 'no address twice');

    const said = daemon.lines.map((l) => String(l.msg));
    t.ok(said.some((m) => m.startsWith('dhcp lease store out of reach: renewals acked for the time their committed lease has left')), 'the log says renewals are answered for their committed time');
    t.ok(said.includes('registry database out of reach: known machines are answered from memory, new leases and every write wait'), 'and that the database is out of reach');
    t.ok(said.includes('registry database reachable again'), 'and when it is back');
  });
}
