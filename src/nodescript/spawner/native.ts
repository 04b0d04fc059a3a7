/**
 * The native spawner (spawner.c): compiled on first use with the system's C compiler (`cc`) into a
 * private cache (`$XDG_CACHE_HOME/provisiond` or `~/.cache/provisiond`, owned by us and writable by
 * nobody else, since the daemon runs what is there), keyed by the source's hash. Starting a script
 * costs it a vfork where the Perl spawner pays a full fork: the difference a boot storm feels.
 * Without a compiler (or source) this returns null and the Perl spawner is used.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../log/logger.js';

const SOURCE = fileURLToPath(new URL('./spawner.c', import.meta.url));

function privateDir(dir: string): boolean {
  const st = statSync(dir);
  return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
}

/** Path of the native spawner, building it if needed; null when it cannot be had. */
export function nativeSpawner(logger: Logger, env: NodeJS.ProcessEnv = process.env): string | null {
  let source: Buffer;
  try {
    source = readFileSync(SOURCE);
  } catch {
    return null;
  }
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  const dir = join(base, 'provisiond');
  // Keyed by source and machine: a home directory shared across architectures never runs a foreign binary.
  const key = createHash('sha256').update(source).update(`\0${process.platform}-${process.arch}`).digest('hex').slice(0, 12);
  const bin = join(dir, `provisiond-spawner-${key}`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!privateDir(dir)) {
      logger.warn({ dir }, `native nodescript spawner: ${dir} is not private to this user; using the perl spawner`);
      return null;
    }
    if (existsSync(bin)) return bin;
    const tmp = `${bin}.${process.pid}.tmp`;
    try {
      execFileSync(env.CC || 'cc', ['-O2', '-o', tmp, SOURCE], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
      chmodSync(tmp, 0o755);
      renameSync(tmp, bin); // atomic: concurrent builders (tests) each rename a whole binary
    } finally {
      rmSync(tmp, { force: true });
    }
    logger.debug({ bin }, 'native nodescript spawner built');
    return bin;
  } catch (err) {
    const why = (err as { stderr?: Buffer }).stderr?.toString().trim().split('\n')[0] || (err as Error).message;
    logger.debug({ err: why }, `native nodescript spawner unavailable (${why}); using the perl spawner`);
    return null;
  }
}
