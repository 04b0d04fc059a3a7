/**
 * Test harness: a real daemon (registry, nodescript engine, HTTP service) on a loopback port chosen
 * by the kernel, with a temp statedir and config file, torn down when the test ends.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon/run.js';
import { memoryLogger } from '../../src/log/logger.js';

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

/** The YAML of a test config: loopback HTTP on a free port, no DHCP/TFTP, plus `extra` lines. */
export function testConfig(statedir: string, extra = '', http = ''): string {
  return `statedir: ${statedir}\nmaster: 127.0.0.1\nhttp:\n  listen: 127.0.0.1\n  port: 0\n${http}tftp:\n  enabled: false\ndhcp:\n  enabled: false\n${extra}`;
}

export function makeStatedir(prefix = 'pvd-http-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  for (const d of ['nodescripts/init/all', 'nodescripts/ready/all', 'files', 'vnfs', 'tftp']) mkdirSync(join(dir, d), { recursive: true });
  return dir;
}

export function writeIn(statedir: string, rel: string, text: string | Buffer, mode = 0o644): string {
  const p = join(statedir, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

export async function startDaemon(t: Teardown, extraConfig = '', opts: { watch?: boolean; setup?: (statedir: string) => void; http?: string } = {}): Promise<Harness> {
  const statedir = makeStatedir();
  t.teardown(() => rmSync(statedir, { recursive: true, force: true }));
  opts.setup?.(statedir);
  const configPath = join(statedir, 'provisiond.yaml');
  writeFileSync(configPath, testConfig(statedir, extraConfig, opts.http));
  const log = memoryLogger();
  const daemon = await Daemon.start({ config: loadConfig(configPath), log, watch: opts.watch ?? false });
  t.teardown(() => daemon.close());
  const port = daemon.http!.server.port;
  return { daemon, statedir, configPath, base: `http://127.0.0.1:${port}`, port, log, write: (rel, text, mode) => writeIn(statedir, rel, text, mode) };
}

/** Reads a whole response body as text. */
export async function text(url: string, init?: RequestInit): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(url, init);
  return { status: res.status, body: await res.text(), headers: res.headers };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
