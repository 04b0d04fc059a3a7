/**
 * Starting provisiond in a test or a bench, one way per need:
 * - `startDaemon`: the daemon in this process (`Daemon.start`), HTTP on a loopback port the kernel
 *   picks, DHCP and TFTP off, a temp statedir: the HTTP, daemon and nodescript tests.
 * - `ServeProcess`: `provisiond serve` as a real process (bin/provisiond.js), here or inside a lab's
 *   namespace: signals, clean exits, the e2e cluster, benches.
 * - `DhcpDaemon`: the real dhcp service alone (test/dhcp/fixtures/dhcp-daemon.ts) inside a lab's
 *   namespace, its counters read over stdin/stdout: the DHCP tests and bench/dhcp.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon/run.js';
import { memoryLogger } from '../../src/log/logger.js';
import { TS_NODE_ARGS } from '../ts-child.js';
import { killQuietly } from './cleanup.js';
import type { Lab } from './netns.js';
import { CLI, REPO } from './paths.js';
import { sleep } from './sleep.js';
import { makeStatedir, writeIn, type Teardown } from './statedir.js';

/** The YAML of a test config: loopback HTTP on a free port, no DHCP/TFTP, plus `extra` lines. */
export function testConfig(statedir: string, extra = '', http = ''): string {
  return `statedir: ${statedir}\nmaster: 127.0.0.1\nhttp:\n  listen: 127.0.0.1\n  port: 0\n${http}tftp:\n  enabled: false\ndhcp:\n  enabled: false\n${extra.includes("api:") ? "" : "api:\n  port: 0\n"}${extra}`;
}

export interface Harness {
  daemon: Daemon;
  statedir: string;
  configPath: string;
  /** `http://127.0.0.1:PORT` */
  base: string;
  port: number;
  log: ReturnType<typeof memoryLogger>;
  /** Writes an executable (mode 755) or plain file under the statedir. */
  write(rel: string, text: string | Buffer, mode?: number): string;
}

/** A real daemon in this process with the config of `testConfig`, closed and removed at teardown. */
export async function startDaemon(t: Teardown, extraConfig = '', opts: { watch?: boolean; setup?: (statedir: string) => void; http?: string } = {}): Promise<Harness> {
  const statedir = makeStatedir(t, {}, { prefix: 'pvd-http-', layout: true });
  opts.setup?.(statedir);
  const configPath = join(statedir, 'provisiond.yaml');
  writeFileSync(configPath, testConfig(statedir, extraConfig, opts.http));
  const log = memoryLogger();
  const daemon = await Daemon.start({ config: loadConfig(configPath), log, watch: opts.watch ?? false });
  t.teardown(() => daemon.close());
  const port = daemon.http!.server.port;
  return { daemon, statedir, configPath, base: `http://127.0.0.1:${port}`, port, log, write: (rel, text, mode) => writeIn(statedir, rel, text, mode) };
}

/**
 * Boots `nodeid` as far as its init script and returns the node credential the script hands it
 * (line 2, `PROVISIOND_CREDENTIAL=...`): what the node presents afterwards.
 */
export async function initCredential(base: string, nodeid: string): Promise<string> {
  const script = await (await fetch(`${base}/nodescripts/init?nodeid=${nodeid}`)).text();
  const m = /^PROVISIOND_CREDENTIAL=([0-9a-f]{64});/m.exec(script);
  if (!m) throw new Error(`no node credential in the init script of ${nodeid}: ${script.slice(0, 200)}`);
  return m[1]!;
}

/** Request headers presenting a node credential. */
export const bearer = (credential: string): { headers: Record<string, string> } => ({ headers: { Authorization: `Bearer ${credential}` } });

/** Reads a whole response body as text. */
export async function text(url: string, init?: RequestInit): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(url, init);
  return { status: res.status, body: await res.text(), headers: res.headers };
}

export interface ServeOptions {
  configPath: string;
  /** Run inside this namespace of the lab (default: this process's namespace). */
  netns?: { lab: Lab; ns: string };
  env?: NodeJS.ProcessEnv;
  /**
   * Append the daemon's output to this file instead of keeping it: `lines` then holds only what it
   * logged until it was ready (a debug log of a long e2e run is large).
   */
  logFile?: string;
  /**
   * Ready once this URL answers (for a config that logs under `info`); by default ready at the
   * `listening: http ADDR:PORT` log line, which also gives the port.
   */
  readyUrl?: string;
  /** How long it may take to be ready (default 60 s). */
  timeoutMs?: number;
}

/** `provisiond serve --log-format json` as a real process; its log lines are kept, parsed. */
export class ServeProcess {
  /** The daemon's log, one parsed JSON object per line (`{ msg }` for a line that is not JSON). */
  readonly lines: Array<Record<string, unknown>> = [];
  /** Resolves to the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** The HTTP port, from the `listening: http` line (0 when ready by `readyUrl`). */
  port = 0;
  /** Its exit code once it exited (null: killed by a signal), undefined while it runs. */
  exitCode: number | null | undefined;
  private keep = true;

  private constructor(
    readonly child: ChildProcess,
    private readonly opts: ServeOptions,
  ) {
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
    child.once('exit', (code) => (this.exitCode = code));
    const out = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : null;
    for (const stream of [child.stdout!, child.stderr!]) {
      if (out) stream.pipe(out, { end: false });
      createInterface({ input: stream }).on('line', (line) => {
        if (!this.keep) return;
        try {
          this.lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.lines.push({ msg: line });
        }
      });
    }
  }

  /** Starts the daemon and waits until it serves HTTP; rejects with its log when it exits first. */
  static async start(opts: ServeOptions): Promise<ServeProcess> {
    const argv = [CLI, '--config', opts.configPath, 'serve', '--log-format', 'json'];
    const spawnOpts: SpawnOptions = { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env };
    const child = opts.netns ? opts.netns.lab.spawn(opts.netns.ns, process.execPath, argv, spawnOpts) : spawn(process.execPath, argv, spawnOpts);
    const d = new ServeProcess(child, opts);
    try {
      await d.ready();
    } catch (err) {
      await d.stop();
      throw err;
    }
    d.keep = !opts.logFile;
    return d;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  private async ready(): Promise<void> {
    const { readyUrl, timeoutMs = 60_000 } = this.opts;
    const end = Date.now() + timeoutMs;
    const where = () => (this.opts.logFile ? `; see ${this.opts.logFile}` : `: ${this.lines.map((l) => l.msg).join(' | ')}`);
    while (Date.now() < end) {
      if (!this.running) {
        await this.exited;
        await sleep(50); // the last lines of its output
        throw new Error(`provisiond serve exited (${this.exitCode}) at start${where()}`);
      }
      if (readyUrl) {
        if (await fetch(readyUrl, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false)) return;
      } else {
        const m = this.lines.map((l) => /^listening: http \S+:(\d+)$/.exec(String(l.msg))).find(Boolean);
        if (m) {
          this.port = Number(m[1]);
          return;
        }
      }
      await sleep(readyUrl ? 100 : 25);
    }
    throw new Error(`provisiond serve did not listen within ${timeoutMs / 1000} s${where()}`);
  }

  /** Sends a signal (SIGHUP reloads, SIGTERM stops). */
  kill(signal: NodeJS.Signals): void {
    if (this.running) killQuietly(this.child.pid, signal);
  }

  /** SIGTERM (the database is closed cleanly), SIGKILL after `graceMs`; resolves once it exited. */
  async stop(graceMs = 10_000): Promise<number | null> {
    if (this.running) {
      this.kill('SIGTERM');
      const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    return this.exited;
  }
}

/** The real dhcp service in a lab's namespace, from a config file. */
export class DhcpDaemon {
  private lines: AsyncIterator<string>;

  private constructor(readonly proc: ChildProcess) {
    this.lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  }

  static async start(lab: Lab, ns: string, configPath: string, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<DhcpDaemon> {
    const p = lab.spawn(ns, process.execPath, [...nodeArgs, ...TS_NODE_ARGS, 'test/dhcp/fixtures/dhcp-daemon.ts', configPath], {
      cwd: REPO,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const d = new DhcpDaemon(p);
    const first = await d.lines.next();
    if (first.value !== 'ready') throw new Error(`dhcp daemon did not start: ${String(first.value)}`);
    return d;
  }

  /** Its counters (see the fixture). */
  async stats(): Promise<Record<string, number>> {
    this.proc.stdin!.write('stats\n');
    const r = await this.lines.next();
    return JSON.parse(r.value as string) as Record<string, number>;
  }

  /** Clean shutdown (leases flushed). */
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = once(this.proc, 'exit');
    this.proc.kill('SIGTERM');
    await exited;
  }
}
