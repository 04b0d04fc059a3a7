/**
 * Network namespaces for the DHCP tests: created by the test, named with the test's prefix and pid,
 * and removed in teardown even when the test fails. Also: running the real dhcp service inside one.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { TS_NODE_ARGS } from '../ts-child.js';

export const isRoot = process.getuid?.() === 0;

/** False (and the file skipped with one line) when not root. Under CI a skip is a failure (see BRIEF). */
export function needRoot(t: { plan(n: number, comment: string): unknown; fail(msg: string): unknown }): boolean {
  if (isRoot) return true;
  if (process.env.CI === 'true') t.fail('needs root for network namespaces (CI must run as root)');
  else t.plan(0, 'skip: needs root for network namespaces');
  return false;
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export const nsExec = (ns: string, cmd: string, args: string[]): string => sh('ip', ['netns', 'exec', ns, cmd, ...args]);

/** A set of namespaces with cleanup. */
export class Lab {
  readonly namespaces: string[] = [];
  readonly procs: ChildProcess[] = [];
  constructor(readonly prefix: string) {}

  ns(suffix: string): string {
    const name = `${this.prefix}-${suffix}`;
    try {
      sh('ip', ['netns', 'del', name]);
    } catch {}
    sh('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    nsExec(name, 'ip', ['link', 'set', 'lo', 'up']);
    // No IPv6: its router solicitations would muddy the per-interface packet counts.
    nsExec(name, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    return name;
  }

  /** A veth pair between two namespaces; addresses in CIDR form or null. */
  link(a: string, aName: string, aAddr: string | null, b: string, bName: string, bAddr: string | null): void {
    sh('ip', ['link', 'add', aName, 'netns', a, 'type', 'veth', 'peer', 'name', bName, 'netns', b]);
    for (const [ns, dev, addr] of [[a, aName, aAddr], [b, bName, bAddr]] as const) {
      if (addr) nsExec(ns, 'ip', ['addr', 'add', addr, 'dev', dev]);
      nsExec(ns, 'ip', ['link', 'set', dev, 'up']);
    }
  }

  spawn(ns: string, cmd: string, args: string[], opts: { stdio?: 'pipe' | 'ignore' } = {}): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: opts.stdio ?? 'pipe' });
    this.procs.push(p);
    return p;
  }

  async cleanup(): Promise<void> {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const ns of this.namespaces) {
      // Kill anything left in the namespace (daemonized dhclient, dnsmasq) before deleting it.
      try {
        const pids = sh('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean);
        for (const pid of pids) process.kill(Number(pid), 'SIGKILL');
      } catch {}
      try {
        sh('ip', ['netns', 'del', ns]);
      } catch {}
    }
  }
}

/** The real dhcp service running in `ns` from a config file. */
export class DaemonProc {
  private lines: AsyncIterator<string>;
  constructor(readonly proc: ChildProcess) {
    this.lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  }

  static async start(lab: Lab, ns: string, configPath: string, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<DaemonProc> {
    const p = spawn('ip', ['netns', 'exec', ns, 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, ...nodeArgs, ...TS_NODE_ARGS, 'test/dhcp/fixtures/dhcp-daemon.ts', configPath], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    lab.procs.push(p);
    const d = new DaemonProc(p);
    const first = await d.lines.next();
    if (first.value !== 'ready') throw new Error(`dhcp daemon did not start: ${String(first.value)}`);
    return d;
  }

  async stats(): Promise<Record<string, number>> {
    this.proc.stdin!.write('stats\n');
    const r = await this.lines.next();
    return JSON.parse(r.value as string) as Record<string, number>;
  }

  /** Clean shutdown (leases flushed). */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = once(this.proc, 'exit');
    this.proc.kill('SIGTERM');
    await exited;
  }
}

/** busybox udhcpc in `ns` on `dev`: the environment its script saw on `bound`, or null (no lease). */
export function udhcpc(ns: string, dev: string, dir: string, extra: string[] = [], tries = 3): Record<string, string> | null {
  const script = `${dir}/udhcpc.sh`;
  writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && env > ${dir}/udhcpc-${ns}-${dev}.env\nexit 0\n`, { mode: 0o755 });
  rmSync(`${dir}/udhcpc-${ns}-${dev}.env`, { force: true });
  try {
    nsExec(ns, 'busybox', ['udhcpc', '-i', dev, '-n', '-q', '-f', '-s', script, '-t', String(tries), '-T', '1', ...extra]);
  } catch {
    return null;
  }
  const text = readFileSync(`${dir}/udhcpc-${ns}-${dev}.env`, 'utf8');
  return Object.fromEntries(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** ISC dhclient in `ns` on `dev`, one attempt: the lease file it wrote, or null. */
export function dhclient(ns: string, dev: string, dir: string, conf = ''): string | null {
  const lf = `${dir}/dhclient-${dev}.leases`;
  const pf = `${dir}/dhclient-${dev}.pid`;
  writeFileSync(`${dir}/dhclient.conf`, conf);
  rmSync(lf, { force: true });
  try {
    nsExec(ns, 'timeout', ['30', 'dhclient', '-1', '-4', '-cf', `${dir}/dhclient.conf`, '-lf', lf, '-pf', pf, '-sf', '/bin/true', dev]);
  } catch {
    return null;
  } finally {
    // dhclient daemonizes once bound: stop it so it does not renew behind the test's back.
    try {
      process.kill(Number(readFileSync(pf, 'utf8').trim()), 'SIGKILL');
    } catch {}
  }
  return readFileSync(lf, 'utf8');
}

/** Packets sent by `dev` so far (to prove a reply did not leave by it). */
export function txPackets(ns: string, dev: string): number {
  return Number(nsExec(ns, 'cat', [`/sys/class/net/${dev}/statistics/tx_packets`]).trim());
}

let jobs = 0;

/** Runs the scripted client fixture in `ns` with a JSON job; returns its parsed output. */
export function scriptedClient(ns: string, job: unknown, address = '10.77.0.250/24', dev = 'eth0'): unknown[] {
  const jobFile = join(tmpdir(), `pvd-dhcp-job-${process.pid}-${++jobs}.json`);
  // A socket client needs an address to send from (udhcpc and dhclient use raw sockets instead).
  nsExec(ns, 'ip', ['addr', 'add', address, 'dev', dev]);
  // ...and a route for its broadcasts to 255.255.255.255.
  nsExec(ns, 'ip', ['route', 'replace', 'default', 'dev', dev]);
  try {
    // Through a file: a job with thousands of MACs is past the kernel's limit for one argument.
    writeFileSync(jobFile, JSON.stringify(job));
    return JSON.parse(nsExec(ns, process.execPath, [...TS_NODE_ARGS, 'test/dhcp/fixtures/dhcp-client.ts', `@${jobFile}`])) as unknown[];
  } finally {
    rmSync(jobFile, { force: true });
    nsExec(ns, 'ip', ['route', 'del', 'default', 'dev', dev]);
    nsExec(ns, 'ip', ['addr', 'del', address, 'dev', dev]);
  }
}
