/**
 * The virtual provisioning network: a lab namespace (test/lib/netns.ts) holding a bridge (STP off,
 * forward delay 0, so a tap forwards the moment it is up) with the master's IPv4 and IPv6 addresses,
 * radvd sending router advertisements (iPXE waits ~16 s for IPv6 autoconfiguration when none come),
 * and one tap per VM. QEMU and provisiond run inside it; nothing reaches the host's own network.
 */
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab } from '../../lib/netns.js';

export interface NetworkOptions {
  /** Folder for radvd's config and logs. */
  dir: string;
  /** Master address with prefix length on the bridge. */
  ipv4?: string;
  /** Master IPv6 address with /64; its prefix is advertised for SLAAC. */
  ipv6?: string;
}

/** The namespace `pvd-e2e-<pid>` with a bridge; `destroy()` kills everything inside and removes it all. */
export class TestNetwork {
  readonly bridge = 'br0';
  readonly master: string;
  readonly prefixLength: number;
  private taps = 0;

  private constructor(
    /** The lab holding the namespace (to start a process in it with test/lib helpers). */
    readonly lab: Lab,
    readonly name: string,
    readonly dir: string,
    ipv4: string,
  ) {
    const [addr, len] = ipv4.split('/');
    this.master = addr;
    this.prefixLength = Number(len);
  }

  /** Creates the namespace, bridge, addresses and the router advertisement daemon. */
  static async create(opts: NetworkOptions): Promise<TestNetwork> {
    const ipv4 = opts.ipv4 ?? '10.99.0.1/24';
    const ipv6 = opts.ipv6 ?? 'fd00:99::1/64';
    const lab = new Lab('pvd-e2e');
    try {
      const net = new TestNetwork(lab, lab.ns(), opts.dir, ipv4);
      await net.ip('link', 'add', net.bridge, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0');
      await net.ip('addr', 'add', ipv4, 'dev', net.bridge);
      await net.ip('addr', 'add', ipv6, 'dev', net.bridge, 'nodad');
      await net.ip('link', 'set', net.bridge, 'up');
      net.startRadvd(ipv6);
      return net;
    } catch (err) {
      lab.destroy();
      throw err;
    }
  }

  /** Runs `ip ARGS` inside the namespace. */
  async ip(...args: string[]): Promise<string> {
    try {
      return await this.lab.run(this.name, 'ip', args, 15_000);
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`, { cause: err });
    }
  }

  /** Runs a command inside the namespace to completion; returns stdout. */
  async exec(cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
    return this.lab.run(this.name, cmd, args, timeoutMs);
  }

  /** Starts a long-running command inside the namespace; it is killed by `destroy()` at the latest. */
  spawn(cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    return this.lab.spawn(this.name, cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  }

  /** Creates a tap on the bridge for one VM; returns its name. */
  async addTap(): Promise<string> {
    const tap = `tap${this.taps++}`;
    await this.ip('tuntap', 'add', tap, 'mode', 'tap');
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
    this.lab.destroy();
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
