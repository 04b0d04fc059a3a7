/**
 * The native TFTP pump (pump.c): compiled on first use with the system's C compiler (`cc`, or `$CC`)
 * into a private cache (`$XDG_CACHE_HOME/provisiond` or `~/.cache/provisiond`, owned by us and
 * writable by nobody else, since the daemon runs what is there), keyed by the source's hash and the
 * machine. Without a compiler (or the source) this resolves null and transfers stay in Node.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../../log/logger.js';

const SOURCE = fileURLToPath(new URL('./pump.c', import.meta.url));

async function privateDir(dir: string): Promise<boolean> {
  const st = await stat(dir);
  return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
}

function compile(cc: string, out: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cc, ['-O2', '-o', out, SOURCE], { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      reject(new Error(stderr.trim().split('\n')[0] || err.message));
    });
  });
}

/** Path of the native pump, building it if needed; null when it cannot be had (reason logged at debug). */
export async function nativePump(logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  let source: Buffer;
  try {
    source = await readFile(SOURCE);
  } catch {
    return null;
  }
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  const dir = join(base, 'provisiond');
  const key = createHash('sha256').update(source).update(`\0${process.platform}-${process.arch}`).digest('hex').slice(0, 12);
  const bin = join(dir, `provisiond-tftp-pump-${key}`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if (!(await privateDir(dir))) {
      logger.warn({ dir }, `tftp native pump: ${dir} is not private to this user; transfers stay in node`);
      return null;
    }
    if (existsSync(bin)) return bin;
    const tmp = `${bin}.${process.pid}.${Date.now()}.tmp`;
    try {
      await compile(env.CC || 'cc', tmp);
      await chmod(tmp, 0o755);
      await rename(tmp, bin); // atomic: concurrent builders (tests) each rename a whole binary
    } finally {
      await rm(tmp, { force: true });
    }
    logger.debug({ bin }, 'tftp native pump built');
    return bin;
  } catch (err) {
    const why = (err as Error).message;
    logger.debug({ err: why }, `tftp native pump unavailable (${why}); transfers stay in node`);
    return null;
  }
}
