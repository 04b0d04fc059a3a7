/**
 * The boot-storm lab (issue 22): two namespaces joined by a veth. The server's (`srv0`, 10.98.0.1/16)
 * runs provisiond or the peer; the clients' (`sim0`) runs the simulator (sim.ts) and holds every address
 * of the DHCP range, so each simulated node speaks from the address it leased. The server's
 * namespace gets a permanent neighbour entry for each of those addresses: permanent entries are not
 * counted against the kernel's neighbour-table limit (gc_thresh3, 1,024 by default and shared by all
 * namespaces), which thousands of learned entries would overflow, silently dropping replies.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab } from '../netns.js';
import { REPO } from '../paths.js';
import { TS_NODE_ARGS } from '../../ts-child.js';
import type { NodeResult, SimOptions, StormReport } from './sim.js';

/** Linux's USER_HZ: /proc/PID/stat counts CPU time in hundredths of a second. */
const CLOCK_TICKS = 100;
const SERVER_MAC = '02:98:00:00:00:01';
const CLIENT_MAC = '02:98:00:00:00:02';

export class StormLab {
  readonly master = '10.98.0.1';
  readonly serverDev = 'srv0';
  /** First and last address of the DHCP range (the range holds `size` addresses). */
  readonly rangeStart: string;
  readonly rangeEnd: string;

  private constructor(
    readonly lab: Lab,
    readonly serverNs: string,
    readonly clientNs: string,
    readonly size: number,
  ) {
    this.rangeStart = addr(257);
    this.rangeEnd = addr(257 + size - 1);
  }

  /** A lab for up to `nodes` nodes (the range has room for 10% more, as a real pool would). */
  static create(nodes: number, dir: string): StormLab {
    const lab = new Lab('pvd-storm', { ipv6: false });
    try {
      const [s, c] = lab.nss('s', 'c');
      lab.link({ ns: s!, dev: 'srv0', addr: '10.98.0.1/16', mac: SERVER_MAC }, { ns: c!, dev: 'sim0', mac: CLIENT_MAC }, {});
      const size = Math.min(60_000, Math.ceil(nodes * 1.1) + 16);
      const storm = new StormLab(lab, s!, c!, size);
      const addrs: string[] = [];
      const neigh: string[] = [];
      for (let i = 0; i < size; i++) {
        addrs.push(`addr add ${addr(257 + i)}/16 dev sim0 noprefixroute`);
        neigh.push(`neigh replace ${addr(257 + i)} lladdr ${CLIENT_MAC} dev srv0 nud permanent`);
      }
      // The route to the master, which `noprefixroute` left out.
      addrs.push('route add 10.98.0.0/16 dev sim0');
      // And a default route: DHCP's limited broadcast (255.255.255.255) needs one to leave.
      addrs.push('route add default dev sim0');
      writeFileSync(join(dir, 'client.batch'), addrs.join('\n') + '\n');
      writeFileSync(join(dir, 'server.batch'), neigh.join('\n') + '\n');
      lab.ip(c!, '-batch', join(dir, 'client.batch'));
      lab.ip(s!, '-batch', join(dir, 'server.batch'));
      // The server's namespace keeps the kernel's defaults (an admin's master has them); the
      // simulated nodes may use every local port.
      lab.exec(c!, 'sysctl', ['-q', '-w', 'net.ipv4.ip_local_port_range=1024 65000']);
      return storm;
    } catch (err) {
      lab.destroy();
      throw err;
    }
  }

  /** Runs the simulator in the clients' namespace; progress lines go to `onProgress`. */
  async simulate(opts: SimOptions, onProgress: (line: string) => void = () => {}): Promise<{ report: StormReport; lost: NodeResult[] }> {
    const child = this.lab.spawn(this.clientNs, process.execPath, ['--max-old-space-size=4096', ...TS_NODE_ARGS, join(REPO, 'test/lib/storm/child.ts'), JSON.stringify(opts)], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      for (const line of d.toString().split('\n')) if (line.startsWith('storm:')) onProgress(line);
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const line = out.trim().split('\n').pop() ?? '';
    if (code !== 0 || !line.startsWith('{')) throw new Error(`the storm simulator exited ${code}: ${err.slice(-2000)}`);
    return JSON.parse(line) as { report: StormReport; lost: NodeResult[] };
  }

  destroy(): void {
    this.lab.destroy();
  }
}

/** 10.98.x.y for the `n`th address of 10.98.0.0/16. */
function addr(n: number): string {
  return `10.98.${(n >> 8) & 255}.${n & 255}`;
}

/** CPU seconds (user + system) and resident memory of a process and its children, sampled by `ProcessMeter`. */
export interface ProcessUsage {
  cpuSeconds: number;
  /** Peak resident set size seen (MiB). */
  peakRssMiB: number;
}

/** Samples a process's CPU time and resident memory from /proc while a storm runs. */
export class ProcessMeter {
  private readonly start: number;
  private peak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pids: () => number[]) {
    this.start = this.cpu();
    this.timer = setInterval(() => (this.peak = Math.max(this.peak, this.rss())), 250);
  }

  stop(): ProcessUsage {
    clearInterval(this.timer);
    return { cpuSeconds: (this.cpu() - this.start) / CLOCK_TICKS, peakRssMiB: Math.round(Math.max(this.peak, this.rss()) / 1024) };
  }

  private cpu(): number {
    let ticks = 0;
    for (const pid of this.pids()) {
      try {
        const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        // utime, stime, cutime, cstime (fields 14-17; after the command, index 11-14).
        ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      } catch {
        /* gone */
      }
    }
    return ticks;
  }

  private rss(): number {
    let kb = 0;
    for (const pid of this.pids()) {
      try {
        kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
      } catch {
        /* gone */
      }
    }
    return kb;
  }
}


/** `pid` and every process below it (the daemon's TFTP pump and nodescript spawner, nginx's workers). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const c of readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8').trim().split(/\s+/)) if (c) out.push(Number(c));
    } catch {
      /* gone */
    }
  }
  return out;
}
