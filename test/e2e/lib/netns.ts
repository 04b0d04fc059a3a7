/**
 * The virtual provisioning network: a network namespace holding a bridge (STP off, forward delay 0,
 * so a tap forwards the moment it is up) with the master's IPv4 and IPv6 addresses, radvd sending
 * router advertisements (iPXE waits ~16 s for IPv6 autoconfiguration when none come), and one tap
 * per VM. QEMU and provisiond run inside it; nothing reaches the host's own network.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { killQuietly, onCleanup, runQuietly } from './cleanup.js';

const execFileAsync = promisify(execFile);
const HAVE_SETPRIV = /pdeathsig/.test(runQuietly('setpriv', ['--help']));

export interface NetworkOptions {
  /** Namespace name; defaults to `pvd-e2e-<pid>` (stale ones of dead pids are swept first). */
  name?: string;
  /** Folder for radvd's config and logs. */
  dir: string;
  /** Master address with prefix length on the bridge. */
  ipv4?: string;
  /** Master IPv6 address with /64; its prefix is advertised for SLAAC. */
  ipv6?: string;
}

/** A namespace with a bridge; `destroy()` kills everything running inside and removes it all. */
export class TestNetwork {
  readonly bridge = 'br0';
  readonly master: string;
  readonly prefixLength: number;
  private taps = 0;
  private readonly unregister: () => void;

  private constructor(readonly name: string, readonly dir: string, ipv4: string, unregister: () => void) {
    const [addr, len] = ipv4.split('/');
    this.master = addr;
    this.prefixLength = Number(len);
    this.unregister = unregister;
  }

  /** Creates the namespace, bridge, addresses and the router advertisement daemon. */
  static async create(opts: NetworkOptions): Promise<TestNetwork> {
    sweepStaleNamespaces();
    const name = opts.name ?? `pvd-e2e-${process.pid}`;
    const ipv4 = opts.ipv4 ?? '10.99.0.1/24';
    const ipv6 = opts.ipv6 ?? 'fd00:99::1/64';
    destroyNamespace(name);
    // Registered before the namespace exists: an interruption at any point below still removes it.
    const unregister = onCleanup(() => destroyNamespace(name));
    await ip('netns', 'add', name);
    const net = new TestNetwork(name, opts.dir, ipv4, unregister);
    try {
      await net.ip('link', 'set', 'lo', 'up');
      await net.ip('link', 'add', net.bridge, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0');
      await net.ip('addr', 'add', ipv4, 'dev', net.bridge);
      await net.ip('addr', 'add', ipv6, 'dev', net.bridge, 'nodad');
      await net.ip('link', 'set', net.bridge, 'up');
      net.startRadvd(ipv6);
    } catch (err) {
      await net.destroy();
      throw err;
    }
    return net;
  }

  /** Runs `ip ARGS` inside the namespace. */
  async ip(...args: string[]): Promise<string> {
    return ip('-n', this.name, ...args);
  }

  /** Runs a command inside the namespace to completion; returns stdout. */
  async exec(cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
    const { stdout } = await execFileAsync('ip', ['netns', 'exec', this.name, cmd, ...args], { timeout: timeoutMs, maxBuffer: 64 << 20 });
    return stdout;
  }

  /** Starts a long-running command inside the namespace; it is killed by `destroy()` at the latest. */
  spawn(cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    // `ip netns exec` and setpriv exec in place, so the command's parent is this process, and
    // PR_SET_PDEATHSIG kills it even when this process is SIGKILLed and no handler can run.
    const argv = HAVE_SETPRIV ? ['setpriv', '--pdeathsig', 'KILL', '--', cmd, ...args] : [cmd, ...args];
    const child = spawn('ip', ['netns', 'exec', this.name, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    const unregister = onCleanup(() => killQuietly(child.pid));
    child.once('exit', unregister);
    return child;
  }

  /** Creates a tap on the bridge for one VM; returns its name. */
  async addTap(): Promise<string> {
    const tap = `tap${this.taps++}`;
    await this.exec('ip', ['tuntap', 'add', tap, 'mode', 'tap']);
    await this.ip('link', 'set', tap, 'master', this.bridge);
    await this.ip('link', 'set', tap, 'up');
    return tap;
  }

  /** The `n`th address of the bridge's subnet (for DHCP ranges). */
  hostAddress(n: number): string {
    const parts = this.master.split('.').map(Number);
    parts[3] = n;
    return parts.join('.');
  }

  /** Kills every process in the namespace and removes it (bridge and taps go with it). */
  async destroy(): Promise<void> {
    destroyNamespace(this.name);
    this.unregister();
  }

  private startRadvd(ipv6: string): void {
    const prefix = ipv6.replace(/::[0-9a-f]*\/64$/, '::/64');
    const conf = join(this.dir, 'radvd.conf');
    writeFileSync(
      conf,
      `interface ${this.bridge} {\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 10;\n` +
        `  prefix ${prefix} { AdvOnLink on; AdvAutonomous on; };\n};\n`,
    );
    const child = this.spawn('radvd', ['-n', '-C', conf, '-p', join(this.dir, 'radvd.pid'), '-m', 'stderr'], { stdio: 'ignore' });
    child.on('error', () => {});
  }
}

async function ip(...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync('ip', args, { timeout: 15_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}

/**
 * Synchronous so that it can run from an exit or signal handler, and quick (tap SIGKILLs a timed-out
 * test 1 s after telling it): SIGKILL everything inside, then remove the namespace's name; the
 * kernel frees the namespace, bridge and taps as the last process in it dies.
 */
function destroyNamespace(name: string): void {
  const pids = runQuietly('ip', ['netns', 'pids', name]).split(/\s+/).filter(Boolean).map(Number);
  for (const pid of pids) killQuietly(pid, 'SIGKILL');
  runQuietly('ip', ['netns', 'del', name]);
}

/** Removes `pvd-e2e-<pid>` namespaces left by runs that were killed outright (SIGKILL). */
function sweepStaleNamespaces(): void {
  for (const line of runQuietly('ip', ['netns', 'list']).split('\n')) {
    const m = /^(pvd-e2e-(\d+))\b/.exec(line);
    if (!m || Number(m[2]) === process.pid) continue;
    try {
      process.kill(Number(m[2]), 0);
    } catch {
      destroyNamespace(m[1]);
    }
  }
}
