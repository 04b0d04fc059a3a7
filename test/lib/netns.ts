/**
 * Network-namespace labs for the tests and benches: namespaces named `<prefix>-<pid>[-<suffix>]`,
 * veth links between them, commands and long-running processes inside them, and one teardown that
 * also runs when the process is interrupted or killed by tap's timeout (cleanup.ts), so a failing
 * run never leaves a namespace or a process behind. Namespaces of the same prefix left by runs that
 * were SIGKILLed (their pid is gone) are removed when the next lab of that prefix starts.
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';
import { killQuietly, onCleanup, runQuietly } from './cleanup.js';

const execFileAsync = promisify(execFile);
const HAVE_SETPRIV = /pdeathsig/.test(runQuietly('setpriv', ['--help']));

export interface LabOptions {
  /** False: IPv6 off in every namespace (its router solicitations would muddy packet counts). */
  ipv6?: boolean;
}

/** One end of a veth link. */
export interface LinkEnd {
  ns: string;
  dev: string;
  /** Address in CIDR form. */
  addr?: string | null;
  /** MAC address, set before the link goes up. */
  mac?: string;
  /** Made a port of this bridge of its namespace (see `bridge`). */
  master?: string;
  /** Brought up (default true). */
  up?: boolean;
}

/** Something a test registers its teardown with (tap's `t`). */
interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Runs a command synchronously; throws with its stderr (the error keeps `stdout` and `status`). */
export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

/** Runs a command inside namespace `ns` to completion, synchronously; returns stdout. */
export function nsExec(ns: string, cmd: string, args: string[]): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args]);
}

/** A set of namespaces and the processes started in them, removed together by `destroy()`. */
export class Lab {
  readonly namespaces: string[] = [];
  private readonly procs = new Set<ChildProcess>();
  private readonly unregister: () => void;

  constructor(
    readonly prefix: string,
    private readonly opts: LabOptions = {},
  ) {
    sweepStale(prefix);
    // Registered before any namespace exists: an interruption at any point still removes them.
    this.unregister = onCleanup(() => this.teardown());
  }

  /** Creates the namespace `<prefix>-<pid>-<suffix>` (or `<prefix>-<pid>`) with lo up; returns its name. */
  ns(suffix?: string): string {
    const name = suffix === undefined ? `${this.prefix}-${process.pid}` : `${this.prefix}-${process.pid}-${suffix}`;
    destroyNamespace(name);
    this.namespaces.push(name);
    sh('ip', ['netns', 'add', name]);
    this.ip(name, 'link', 'set', 'lo', 'up');
    if (this.opts.ipv6 === false) this.exec(name, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    return name;
  }

  /** `ns` for each suffix: `const [S, C] = lab.nss('s', 'c')`. */
  nss(...suffixes: string[]): string[] {
    return suffixes.map((s) => this.ns(s));
  }

  /** A veth pair between two namespaces (or within one); `mtu` for both ends. */
  link(a: LinkEnd, b: LinkEnd, opts: { mtu?: number } = {}): void {
    const mtu = opts.mtu === undefined ? [] : ['mtu', String(opts.mtu)];
    sh('ip', ['link', 'add', a.dev, 'netns', a.ns, ...mtu, 'type', 'veth', 'peer', 'name', b.dev, 'netns', b.ns, ...mtu]);
    for (const end of [a, b]) {
      if (end.mac) this.ip(end.ns, 'link', 'set', end.dev, 'address', end.mac);
      if (end.addr) this.ip(end.ns, 'addr', 'add', end.addr, 'dev', end.dev);
      if (end.master) this.ip(end.ns, 'link', 'set', end.dev, 'master', end.master);
      if (end.up !== false) this.ip(end.ns, 'link', 'set', end.dev, 'up');
    }
  }

  /** A bridge in `ns` (a master's provisioning network), up, with `addr` (CIDR) if given. */
  bridge(ns: string, dev: string, addr?: string): void {
    this.ip(ns, 'link', 'add', dev, 'type', 'bridge');
    if (addr) this.ip(ns, 'addr', 'add', addr, 'dev', dev);
    this.ip(ns, 'link', 'set', dev, 'up');
  }

  /** `ip -n NS ARGS`, synchronously. */
  ip(ns: string, ...args: string[]): string {
    return sh('ip', ['-n', ns, ...args]);
  }

  /** Runs a command inside `ns` to completion, synchronously; returns stdout. */
  exec(ns: string, cmd: string, args: string[]): string {
    return nsExec(ns, cmd, args);
  }

  /** Runs a command inside `ns` to completion without blocking the event loop; returns stdout. */
  async run(ns: string, cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
    const { stdout } = await execFileAsync('ip', ['netns', 'exec', ns, cmd, ...args], { timeout: timeoutMs, maxBuffer: 64 << 20 });
    return stdout;
  }

  /**
   * Starts a long-running command inside `ns` (stdio `pipe` unless told); it is killed by `destroy()`
   * at the latest, and by the kernel when this process dies however it dies.
   */
  spawn(ns: string, cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    // `ip netns exec` and setpriv exec in place, so the command's pid is the child's and its parent
    // is this process: PR_SET_PDEATHSIG kills it even when this process is SIGKILLed.
    const argv = HAVE_SETPRIV ? ['setpriv', '--pdeathsig', 'KILL', '--', cmd, ...args] : [cmd, ...args];
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: 'pipe', ...options });
    this.procs.add(child);
    child.once('exit', () => this.procs.delete(child));
    return child;
  }

  /** Kills every process started here and everything still inside the namespaces, and removes them. */
  destroy(): void {
    this.teardown();
    this.unregister();
  }

  private teardown(): void {
    for (const p of this.procs) killQuietly(p.pid, 'SIGKILL');
    this.procs.clear();
    for (const ns of this.namespaces.splice(0)) destroyNamespace(ns);
  }
}

/** A lab for test `t`, destroyed at its teardown. */
export function testLab(t: Teardown, prefix: string, opts: LabOptions = {}): Lab {
  const lab = new Lab(prefix, opts);
  t.teardown(() => lab.destroy());
  return lab;
}

/**
 * Synchronous so that it can run from an exit or signal handler, and quick (tap SIGKILLs a timed-out
 * test 1 s after telling it): SIGKILL everything inside (daemonized dhclient, dnsmasq, QEMU), then
 * remove the namespace's name; the kernel frees the namespace and its links as the last process dies.
 */
function destroyNamespace(name: string): void {
  const pids = runQuietly('ip', ['netns', 'pids', name]).split(/\s+/).filter(Boolean).map(Number);
  for (const pid of pids) killQuietly(pid, 'SIGKILL');
  runQuietly('ip', ['netns', 'del', name]);
}

/** Removes `<prefix>-<pid>[-...]` namespaces of pids that no longer exist. */
function sweepStale(prefix: string): void {
  const own = new RegExp(`^(${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(\\d+)(?:-\\S*)?)(?:\\s|$)`);
  for (const line of runQuietly('ip', ['netns', 'list']).split('\n')) {
    const m = own.exec(line);
    if (!m || Number(m[2]) === process.pid) continue;
    try {
      process.kill(Number(m[2]), 0);
    } catch (err) {
      // EPERM: alive, someone else's.
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') destroyNamespace(m[1]);
    }
  }
}
