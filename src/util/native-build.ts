/**
 * Small C helpers shipped as source (the nodescript spawner, the TFTP pump) are compiled on first
 * use with the system's C compiler (`$CC` or `cc`) into a private cache (`$XDG_CACHE_HOME/provisiond`
 * or `~/.cache/provisiond`, owned by us and writable by nobody else, since the daemon runs what is
 * there), keyed by the source's hash and the machine: a home directory shared across architectures
 * never runs a foreign binary. Callers fall back to a slower path when this throws.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Why a helper cannot be had; `notPrivate`: the cache directory is not ours alone (worth a warning). */
export class NativeBuildError extends Error {
  constructor(
    message: string,
    readonly notPrivate = false,
  ) {
    super(message);
  }
}

interface Target {
  bin: string;
  /** Unique per builder: concurrent builders (tests) each rename a whole binary into place. */
  tmp: string;
  cc: string;
}

function target(sourceFile: string, name: string, env: NodeJS.ProcessEnv): Target {
  let source: Buffer;
  try {
    source = readFileSync(sourceFile);
  } catch {
    throw new NativeBuildError(`${sourceFile} is missing`);
  }
  const dir = join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'provisiond');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) {
    throw new NativeBuildError(`${dir} is not private to this user`, true);
  }
  const key = createHash('sha256').update(source).update(`\0${process.platform}-${process.arch}`).digest('hex').slice(0, 12);
  const bin = join(dir, `${name}-${key}`);
  return { bin, tmp: `${bin}.${process.pid}.${Date.now()}.tmp`, cc: env.CC || 'cc' };
}

function install({ bin, tmp }: Target): string {
  chmodSync(tmp, 0o755);
  renameSync(tmp, bin);
  return bin;
}

function compilerError(err: unknown): NativeBuildError {
  const stderr = (err as { stderr?: Buffer | string }).stderr?.toString().trim().split('\n')[0];
  return new NativeBuildError(stderr || (err as Error).message);
}

/** Path of the compiled `sourceFile`, built now if needed (blocks while the compiler runs). */
export function nativeBinarySync(sourceFile: string, name: string, env: NodeJS.ProcessEnv = process.env): string {
  const t = target(sourceFile, name, env);
  if (existsSync(t.bin)) return t.bin;
  try {
    execFileSync(t.cc, ['-O2', '-o', t.tmp, sourceFile], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
    return install(t);
  } catch (err) {
    throw compilerError(err);
  } finally {
    rmSync(t.tmp, { force: true });
  }
}

/** Path of the compiled `sourceFile`, built now if needed, without blocking the event loop. */
export async function nativeBinary(sourceFile: string, name: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const t = target(sourceFile, name, env);
  if (existsSync(t.bin)) return t.bin;
  try {
    await new Promise<void>((resolve, reject) => {
      execFile(t.cc, ['-O2', '-o', t.tmp, sourceFile], { timeout: 60_000 }, (err, _out, stderr) => (err ? reject(Object.assign(err, { stderr })) : resolve()));
    });
    return install(t);
  } catch (err) {
    throw compilerError(err);
  } finally {
    rmSync(t.tmp, { force: true });
  }
}
