/**
 * A virtual cluster: a temp statedir, a config with DHCP on the test bridge, TFTP and HTTP,
 * `provisiond serve` running inside the test namespace, and the `provisiond` CLI (run on the host
 * against the same statedir) for what an admin would type. Shared by the e2e tests and `npm run demo`.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ServeProcess } from '../../lib/daemon.js';
import { CLI, REPO } from '../../lib/paths.js';
import { sleep } from '../../lib/sleep.js';
import type { TestNetwork } from './netns.js';

const execFileAsync = promisify(execFile);

export interface ClusterOptions {
  net: TestNetwork;
  /** The statedir (created; the shipped nodescripts are copied into it). */
  statedir: string;
  /** Seconds between ready-agent check-ins (short for tests). */
  readyInterval?: number;
  /** Extra YAML appended to the generated config. */
  extraConfig?: string;
  /** The registry database (default: SQLite in the statedir). */
  database?: string;
  /** Progress messages (building images, starting the daemon). */
  log?: (msg: string) => void;
}

/** A node as `provisiond node list --json` shows it (only the fields the tests read are typed). */
export interface ListedNode {
  name: string;
  nodeid: string;
  group?: string;
  vnfs?: string;
  enabled?: boolean;
  state?: string | null;
  ipaddr?: string | null;
  lastaddr?: string | null;
  lastcontact?: number | string | null;
  [key: string]: unknown;
}

export class Cluster {
  readonly configPath: string;
  readonly daemonLog: string;
  readonly httpBase: string;
  private daemon: ServeProcess | null = null;

  constructor(readonly opts: ClusterOptions) {
    this.configPath = join(opts.statedir, 'provisiond.yaml');
    this.daemonLog = join(opts.statedir, 'provisiond.log');
    this.httpBase = `http://${opts.net.master}:8080`;
  }

  get statedir(): string {
    return this.opts.statedir;
  }

  /** Writes the statedir and config; builds the stage-1 kernel + initramfs and the demo VNFS. */
  async prepare(): Promise<void> {
    const { statedir, net } = this.opts;
    const log = this.opts.log ?? (() => {});
    mkdirSync(join(statedir, 'var'), { recursive: true });
    // The shipped nodescripts are the default statedir content (executable bits kept).
    cpSync(join(REPO, 'nodescripts'), join(statedir, 'nodescripts'), { recursive: true });
    writeFileSync(
      this.configPath,
      [
        `statedir: ${statedir}`,
        `master: ${net.master}`,
        `database: ${JSON.stringify(this.opts.database ?? 'sqlite:var/provisiond.db')}`,
        'log: { level: debug, format: json }',
        'http: { listen: 0.0.0.0, port: 8080 }',
        'tftp: { enabled: true, listen: 0.0.0.0, port: 69 }',
        'dhcp:',
        '  enabled: true',
        '  mode: server',
        `  interface: ${net.bridge}`,
        `  range: [${net.hostAddress(100)}, ${net.hostAddress(199)}]`,
        '  netmask: 255.255.255.0',
        'defaults: { group: cluster, vnfs: demo, autoRegister: true }',
        `ready: { interval: ${this.opts.readyInterval ?? 300} }`,
        this.opts.extraConfig ?? '',
        '',
      ].join('\n'),
    );
    if (!existsSync(join(statedir, 'tftp/vmlinuz')) || !existsSync(join(statedir, 'tftp/initramfs.img'))) {
      log('building the stage-1 kernel and initramfs (provisiond initramfs build)');
      await this.cli(['initramfs', 'build'], 600_000);
    }
    log('building the demo VNFS (provisiond vnfs build demo --busybox)');
    await this.cli(['vnfs', 'build', 'demo', '--busybox'], 600_000);
  }

  /**
   * Gives the VMs' groups the kernel arguments virtual machines want: `no_timer_check`, without which
   * a TCG guest on a busy host can panic at boot ("IO-APIC + timer doesn't work!"), as cloud images
   * do, and `cryptomgr.notests`, which skips the crypto self-tests (0.4-0.8 s of an emulated CPU's
   * boot). Set as a group attribute (`group set kernel.args`), the way an admin tunes a partition.
   */
  async vmGroups(groups: string[]): Promise<void> {
    for (const g of groups) await this.cli(['group', 'set', 'kernel.args', VM_KERNEL_ARGS, g]);
  }

  /** Starts `provisiond serve` inside the namespace and waits until it serves HTTP. */
  async start(timeoutMs = 60_000): Promise<void> {
    const { net } = this.opts;
    this.daemon = await ServeProcess.start({
      configPath: this.configPath,
      netns: { lab: net.lab, ns: net.name },
      env: { ...process.env, NODE_ENV: 'production' },
      logFile: this.daemonLog,
      timeoutMs,
    });
  }

  get daemonRunning(): boolean {
    return this.daemon?.running ?? false;
  }

  /** SIGTERM to the daemon (it closes the database cleanly), SIGKILL after 10 s. */
  async stop(): Promise<void> {
    await this.daemon?.stop();
  }

  /** `kill -9` of the daemon, as a crash or a power cut of the master would end it; resolves once it is gone. */
  async kill9(): Promise<void> {
    if (!this.daemon) return;
    this.daemon.kill('SIGKILL');
    await this.daemon.exited;
  }

  /** Runs the provisiond CLI against this cluster's config; rejects with its stderr on failure. */
  async cli(args: string[], timeoutMs = 60_000): Promise<string> {
    try {
      // The CLI's coverage comes from test/cli; here it runs through tsx, uncounted, which starts in
      // a third of the time tap's TypeScript loader takes (bin/provisiond.js).
      const { stdout } = await execFileAsync(process.execPath, [CLI, '--config', this.configPath, ...args], {
        timeout: timeoutMs,
        maxBuffer: 64 << 20,
        cwd: REPO,
        env: { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0' },
      });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`provisiond ${args.join(' ')}: ${(e.stderr || e.stdout || e.message).trim()}`, { cause: err });
    }
  }

  /** `provisiond node list --json`. */
  async nodes(): Promise<ListedNode[]> {
    const out = await this.cli(['node', 'list', '--json']);
    const parsed = JSON.parse(out) as ListedNode[] | { nodes: ListedNode[] };
    return Array.isArray(parsed) ? parsed : parsed.nodes;
  }

  private polled: { at: number; list: Promise<ListedNode[]> } | null = null;

  /** `nodes()` shared by concurrent waiters: at most one CLI run per 2 s (each costs a CPU second). */
  private pollNodes(): Promise<ListedNode[]> {
    if (!this.polled || Date.now() - this.polled.at > 2000) this.polled = { at: Date.now(), list: this.nodes() };
    return this.polled.list;
  }

  /** The node registered for `mac`, if any. */
  async nodeByMac(mac: string): Promise<ListedNode | undefined> {
    return (await this.nodes()).find((n) => n.nodeid.toLowerCase() === mac.toLowerCase());
  }

  /** `provisiond node timeline NAME` as printed for the admin. */
  async timeline(name: string): Promise<string> {
    return this.cli(['node', 'timeline', name]);
  }

  /** `provisiond node timeline NAME --json`: events with epoch-ms times. */
  async timelineEvents(name: string): Promise<TimelineEntry[]> {
    const parsed = JSON.parse(await this.cli(['node', 'timeline', name, '--json', '--limit', '100000'])) as TimelineEntry[] | { events: TimelineEntry[] };
    return Array.isArray(parsed) ? parsed : parsed.events;
  }

  /** Polls `node list --json` until `pred` holds for the node of `mac`. */
  async waitForNode(mac: string, pred: (n: ListedNode) => boolean, timeoutMs: number, what = 'the expected state'): Promise<ListedNode> {
    const end = Date.now() + timeoutMs;
    let last: ListedNode | undefined;
    for (;;) {
      if (!this.daemonRunning) throw new Error(`provisiond serve exited (${this.daemon?.exitCode}); see ${this.daemonLog}`);
      last = (await this.pollNodes().catch(() => [] as ListedNode[])).find((n) => n.nodeid.toLowerCase() === mac.toLowerCase());
      if (last && pred(last)) return last;
      if (Date.now() > end) throw new Error(`${mac} did not reach ${what} within ${timeoutMs / 1000} s (last: ${JSON.stringify(last ?? null)})`);
      await sleep(2100);
    }
  }
}

/** Kernel arguments of the VMs' groups (see Cluster.vmGroups). */
export const VM_KERNEL_ARGS = 'no_timer_check cryptomgr.notests';

/** One timeline event as the CLI's --json prints it. */
export interface TimelineEntry {
  time: number | string;
  source: string;
  stage: string;
  msg: string | null;
  ok: boolean;
}
