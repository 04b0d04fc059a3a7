/** Fixtures for the nodescript tests: a temp statedir with real files, real modes and real links. */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import type { MasterContext, NodeContext } from '../../src/nodescript/index.js';

export type FileSpec = string | { content: string | Buffer; mode?: number } | { link: string };

/** Creates a statedir holding `files` (paths relative to it); a string is an executable script. Removed at teardown. */
export function makeStatedir(t: { teardown(fn: () => void): void }, files: Record<string, FileSpec>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-ns-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  addFiles(dir, files);
  return dir;
}

export function addFiles(dir: string, files: Record<string, FileSpec>): void {
  for (const [rel, spec] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    if (typeof spec === 'object' && 'link' in spec) {
      symlinkSync(spec.link, p);
      continue;
    }
    const { content, mode } = typeof spec === 'string' ? { content: spec, mode: 0o755 } : { mode: 0o644, ...spec };
    writeFileSync(p, content);
    chmodSync(p, mode);
  }
}

export function node(over: Partial<NodeContext> = {}): NodeContext {
  return { state: 'init', nodename: 'n0001', nodeid: '52:54:00:12:34:56', group: 'compute', vnfs: 'centos', enabled: true, debug: 0, ipaddr: '10.0.0.101', ...over };
}

export function master(statedir: string, over: Partial<MasterContext> = {}): MasterContext {
  return { statedir, vnfsMethod: 'http', vnfsMaster: '10.0.0.1:8080', vnfsPrefix: 'files', readyInterval: 300, ...over };
}

export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks);
}
