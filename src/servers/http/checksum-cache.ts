/**
 * SHA-256 of served files, computed once per file version (device, inode, size, mtime) and shared
 * by every request that arrives while it is being computed, so a boot storm hashes an image once.
 * A fresh `<file>.sha256` sidecar (as written by the VNFS image builder) is used instead of hashing.
 */
import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';

interface Entry {
  version: string;
  digest: Promise<string>;
}

/** Identity of one version of a file: a change of content changes one of these. */
export function fileVersion(st: Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
}

export class ChecksumCache {
  readonly #entries = new Map<string, Entry>();
  /** How many digests were computed by reading the file (not from a sidecar); for tests and logs. */
  computed = 0;

  /** The hex SHA-256 of `file`, whose current stats are `st`. */
  sha256(file: string, st: Stats): Promise<string> {
    const version = fileVersion(st);
    const hit = this.#entries.get(file);
    if (hit && hit.version === version) return hit.digest;
    const digest = this.#digest(file, st);
    const entry = { version, digest };
    this.#entries.set(file, entry);
    // A failed computation is not cached: the next request tries again.
    digest.catch(() => {
      if (this.#entries.get(file) === entry) this.#entries.delete(file);
    });
    return digest;
  }

  /** Forgets `file`, or every file under the directory prefix `dir` (VNFS tree changed). */
  invalidate(pathOrDir: string): void {
    for (const key of this.#entries.keys()) {
      if (key === pathOrDir || key.startsWith(pathOrDir.endsWith('/') ? pathOrDir : `${pathOrDir}/`)) this.#entries.delete(key);
    }
  }

  get size(): number {
    return this.#entries.size;
  }

  async #digest(file: string, st: Stats): Promise<string> {
    const fromSidecar = await readSidecar(file, st);
    if (fromSidecar) return fromSidecar;
    this.computed++;
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
    return hash.digest('hex');
  }
}

/** `<file>.sha256` in `sha256sum` format, only when written after the file's last change. */
async function readSidecar(file: string, st: Stats): Promise<string | null> {
  try {
    const side = await stat(`${file}.sha256`);
    if (side.mtimeMs < st.mtimeMs) return null;
    const m = /^([0-9a-f]{64})\b/i.exec(await readFile(`${file}.sha256`, 'utf8'));
    return m ? m[1]!.toLowerCase() : null;
  } catch {
    return null;
  }
}
