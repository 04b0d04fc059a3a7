/**
 * Temporary statedirs for the tests: real files, real modes and real links, removed when the test
 * ends (or, for a run that registers it with cleanup.ts, also when the process is interrupted).
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** A file of a statedir: a string is an executable script (mode 755). */
export type FileSpec = string | { content: string | Buffer; mode?: number } | { link: string };

/** The folders `provisiond serve` expects in a statedir. */
export const STATEDIR_LAYOUT = ['nodescripts/init/all', 'nodescripts/ready/all', 'files', 'vnfs', 'tftp'];

export interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface StatedirOptions {
  /** Name prefix of the temp folder (default `pvd-ns-`). */
  prefix?: string;
  /** Create the folders of STATEDIR_LAYOUT too (default false). */
  layout?: boolean;
}

/** Creates a statedir holding `files` (paths relative to it), removed at `t`'s teardown. */
export function makeStatedir(t: Teardown, files: Record<string, FileSpec> = {}, opts: StatedirOptions = {}): string {
  const dir = mkdtempSync(join(tmpdir(), opts.prefix ?? 'pvd-ns-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  if (opts.layout) for (const d of STATEDIR_LAYOUT) mkdirSync(join(dir, d), { recursive: true });
  addFiles(dir, files);
  return dir;
}

/** Writes `files` under `dir` (see FileSpec). */
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

/** Writes one file under `statedir` (plain, mode 644, unless told); returns its path. */
export function writeIn(statedir: string, rel: string, text: string | Buffer, mode = 0o644): string {
  addFiles(statedir, { [rel]: { content: text, mode } });
  return join(statedir, rel);
}
