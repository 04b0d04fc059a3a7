/**
 * The crowd test of several servers: three `provisiond serve` processes, each in its own network
 * namespace with its own statedir, on one bridge (the provisioning network), sharing one PostgreSQL
 * (test/lib/postgres.ts). A crowd of DHCP clients (the project's scripted client, as RFC 2131
 * clients: a NAK or a dead server's silence starts them over) boots against all three at once:
 * every client is bound and no address is ACKed to two clients. Then again with one server killed
 * with -9 in the middle of the crowd.
 *
 * PVD_CROWD sets the number of clients (default 1000); the whole test is bounded by CROWD_MS per run.
 */
import t, { type Test } from 'tap';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { needRoot } from '../lib/gate.js';
import { testLab, type Lab } from '../lib/netns.js';
import { CLI, REPO } from '../lib/paths.js';
import { postgresMissing, startPostgres } from '../lib/postgres.js';
import { sleep } from '../lib/sleep.js';
import { makeStatedir } from '../lib/statedir.js';
import { scriptedClient } from './peers.js';

if (!needRoot(t)) process.exit(0);
const missing = postgresMissing();

const N = Number(process.env.PVD_CROWD ?? 1000);
/** How long a crowd may take to be bound (a loaded 2-core machine runs three daemons and PostgreSQL). */
const CROWD_MS = 240_000;
const SERVERS = 3;

interface Server {
  proc: ChildProcess;
  log: string;
}

/** `provisiond serve` in `ns`, its log in a file (no pipe to fill while the test waits on the client). */
async function serve(lab: Lab, ns: string, config: string, log: string): Promise<Server> {
  const fd = openSync(log, 'a');
  const proc = lab.spawn(ns, process.execPath, [CLI, '--config', config, 'serve', '--log-format', 'json'], { cwd: REPO, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  for (let i = 0; i < 1200; i++) {
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    if (text.includes('dhcp server listening')) return { proc, log };
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`provisiond serve exited at start: ${text.slice(-2000)}`);
    await sleep(50);
  }
  throw new Error(`provisiond serve did not start within 60 s: ${readFileSync(log, 'utf8').slice(-2000)}`);
}

type Storm = { acked: Array<[string, string, string | null]>; ms: number; naks: number; restarts: number; killedAt: number | null; latency: { p50: number | null; p99: number | null } };

t.test('three servers, one PostgreSQL, one crowd', { skip: missing }, async (t) => {
  const pg = await startPostgres(t);
  const lab = testLab(t, 'pvd-multi', { ipv6: false });
  const id = process.pid;
  const C = lab.ns('c');
  lab.bridge(C, 'br0');
  const servers = Array.from({ length: SERVERS }, (_, i) => {
    const ns = lab.ns(`s${i + 1}`);
    const dev = `vm${i + 1}x${id}`.slice(0, 15);
    lab.link({ ns, dev, addr: `10.83.0.${i + 1}/16` }, { ns: C, dev: `p${i + 1}`, master: 'br0' });
    return { ns, dev, addr: `10.83.0.${i + 1}` };
  });

  async function crowd(t: Test, db: string, killOne: boolean): Promise<void> {
    const url = await pg.createDatabase(t, db);
    const running: Server[] = [];
    for (const [i, s] of servers.entries()) {
      const dir = makeStatedir(t, {}, { prefix: `pvd-multi-${i + 1}-` });
      const config = join(dir, 'provisiond.yaml');
      writeFileSync(
        config,
        `statedir: ${dir}\ndatabase: "${url}"\nmaster: ${s.addr}\nlog:\n  level: info\n` +
          `http:\n  listen: ${s.addr}\n  port: 8080\ntftp:\n  enabled: false\napi:\n  port: 0\n` +
          `dhcp:\n  enabled: true\n  interface: ${s.dev}\n  netmask: 255.255.0.0\n  leaseTime: 3600\n  range: [10.83.1.0, 10.83.8.255]\n`,
      );
      const srv = await serve(lab, s.ns, config, join(dir, 'serve.log'));
      running.push(srv);
      t.teardown(() => void srv.proc.kill('SIGKILL'));
    }
    const macs = Array.from({ length: N }, (_, i) => `52:54:83:${killOne ? '01' : '00'}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`.toUpperCase());
    const victim = running[1]!;
    const [r] = scriptedClient(
      C,
      {
        storm: {
          to: '255.255.255.255',
          retryMs: 2000,
          macs,
          rate: 100,
          waitMs: CROWD_MS,
          restart: true,
          ...(killOne ? { killPid: victim.proc.pid, killAfterAcks: Math.floor(N / 3) } : {}),
        },
      },
      '10.83.255.250/16',
      'br0',
    ) as Storm[];
    const bound = new Map(r!.acked.map(([mac, addr]) => [mac, addr]));
    t.comment(`${N} clients, ${SERVERS} servers: ${bound.size} bound in ${r!.ms} ms, ${r!.naks} NAKs, ${r!.restarts} restarts, p50 ${r!.latency.p50} ms p99 ${r!.latency.p99} ms (no retransmission)`);
    if (killOne) {
      t.ok(r!.killedAt !== null, `server 2 killed with -9 after ${Math.floor(N / 3)} ACKs (at ${r!.killedAt} ms)`);
      await sleep(100);
      t.equal(victim.proc.signalCode, 'SIGKILL', 'it died by SIGKILL');
    }
    if (!t.equal(bound.size, N, 'every client bound')) {
      for (const s of running) t.comment(readFileSync(s.log, 'utf8').split('\n').filter((l) => !l.includes('"level":30')).slice(-15).join('\n'));
    }
    // An address ACKed to two clients: the first ACKs of the crowd against what each client kept.
    const holders = new Map<string, Set<string>>();
    for (const [mac, addr] of r!.acked) holders.set(addr, (holders.get(addr) ?? new Set()).add(mac));
    t.same([...holders].filter(([, macs]) => macs.size > 1), [], 'no address ACKed to two clients');
    const rows = (await pg.query("SELECT hwaddr, address FROM leases WHERE state = 'bound'", db)).rows as Array<{ hwaddr: string; address: string }>;
    const stored = new Map(rows.map((l) => [l.hwaddr, l.address]));
    t.same([...bound].filter(([mac, addr]) => stored.get(mac) !== addr), [], 'the database holds every ACKed lease');
    t.equal(new Set(rows.map((l) => l.address)).size, rows.length, 'and no address twice');
    for (const s of running) s.proc.kill('SIGKILL');
  }

  t.test('all three answer at once', (t) => crowd(t, 'crowd', false));
  t.test('one killed with -9 in the middle', (t) => crowd(t, 'crowdkill', true));
});
