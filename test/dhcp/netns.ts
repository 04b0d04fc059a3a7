/**
 * Network namespaces for the DHCP tests: created by the test, named with the test's prefix and pid,
 * and removed in teardown even when the test fails. Also: running the real dhcp service inside one.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export const isRoot = process.getuid?.() === 0;

/** Skip reason, or null when the test can run. Under CI a skip is a failure (see BRIEF). */
export function needRoot(t: { skip: (msg: string) => void; fail: (msg: string) => void }): boolean {
  if (isRoot) return true;
  if (process.env.CI === 'true') t.fail('needs root for network namespaces (CI must run as root)');
  else t.skip('needs root for network namespaces');
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

  static async start(lab: Lab, ns: string, configPath: string, env: Record<string, string> = {}): Promise<DaemonProc> {
    const p = spawn('ip', ['netns', 'exec', ns, 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, '--import', 'tsx', 'test/dhcp/fixtures/dhcp-daemon.ts', configPath], {
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
