/**
 * Writes a directory tree as a cpio newc archive into a sink (a ParallelGzip), streaming: one file
 * at a time, read straight into the compressor's block, so memory does not grow with the tree.
 * Entries are sorted bytewise per directory, so the same tree always gives the same archive.
 * Also used for the stage-1 initramfs, whose members may come from memory instead of a tree.
 */
import { createHash } from 'node:crypto';
import { open, readdir, readlink, lstat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import {
  encodeHeader, encodeTrailer, pad4, type CpioHeader,
  S_IFMT, S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK,
} from '../protocol/cpio/newc.js';
import type { ParallelGzip } from './pgzip.js';

/**
 * Where archive bytes go: ParallelGzip implements it. `boundary()`, when the sink has it, is called
 * after each complete entry (ParallelGzip cuts its gzip members only there, for the kernel).
 */
export type CpioSink = Pick<ParallelGzip, 'write' | 'space' | 'commit'> & Partial<Pick<ParallelGzip, 'boundary'>>;

const ZERO = Buffer.alloc(4);

/** A member given in memory (initramfs files made by provisiond itself). */
export interface MemoryMember {
  name: string;
  mode: number;
  data?: Buffer;
  /** Symlink target. */
  target?: string;
  uid?: number;
  gid?: number;
  mtime?: number;
  rdevmajor?: number;
  rdevminor?: number;
}

/** Writes cpio entries into a sink; numbers inodes itself so hard links stay linked. */
export class CpioStreamWriter {
  readonly #sink: CpioSink;
  #nextIno = 1;
  readonly #links = new Map<string, number>();
  /** Fingerprint of what was archived (path, mode, owner, size, times): tells later whether the tree changed. */
  readonly fingerprint = createHash('sha256');
  entries = 0;

  constructor(sink: CpioSink) {
    this.#sink = sink;
  }

  /** Adds an in-memory member. */
  async addMember(m: MemoryMember): Promise<void> {
    const data = m.target !== undefined ? Buffer.from(m.target) : (m.data ?? Buffer.alloc(0));
    await this.#sink.write(encodeHeader({
      name: m.name, ino: this.#nextIno++, mode: m.mode, uid: m.uid ?? 0, gid: m.gid ?? 0, nlink: (m.mode & S_IFMT) === S_IFDIR ? 2 : 1,
      mtime: m.mtime ?? 0, size: data.length, devmajor: 0, devminor: 0, rdevmajor: m.rdevmajor ?? 0, rdevminor: m.rdevminor ?? 0,
    }));
    await this.#sink.write(data);
    await this.#sink.write(ZERO.subarray(0, pad4(data.length)));
    this.entries++;
    await this.#sink.boundary?.();
  }

  /**
   * Adds the contents of directory `root` (not the root itself) under the archive prefix `prefix`
   * ('' for the archive root). Sockets are skipped: they cannot be restored meaningfully.
   */
  async addTree(root: string, prefix = ''): Promise<void> {
    const names = (await readdir(root)).sort(bytewise);
    for (const name of names) {
      const path = join(root, name);
      const st = await lstat(path, { bigint: false });
      const archName = prefix ? `${prefix}/${name}` : name;
      if ((st.mode & S_IFMT) === S_IFSOCK) continue;
      await this.addPath(path, archName, st);
      if (st.isDirectory()) await this.addTree(path, archName);
    }
  }

  /** Adds one file system object under `archName`. */
  async addPath(path: string, archName: string, st: Stats): Promise<void> {
    await this.#addEntry(path, archName, st);
    await this.#sink.boundary?.();
  }

  async #addEntry(path: string, archName: string, st: Stats): Promise<void> {
    const type = st.mode & S_IFMT;
    this.fingerprint.update(fingerprintLine(archName, st));
    const header: CpioHeader = {
      name: archName, ino: 0, mode: st.mode, uid: st.uid, gid: st.gid, nlink: st.nlink, mtime: Math.floor(st.mtimeMs / 1000),
      size: 0, devmajor: 0, devminor: 0, rdevmajor: 0, rdevminor: 0,
    };
    this.entries++;
    if (type === S_IFLNK) {
      const target = Buffer.from(await readlink(path, { encoding: 'buffer' }));
      header.ino = this.#nextIno++;
      header.size = target.length;
      await this.#sink.write(encodeHeader(header));
      await this.#sink.write(target);
      await this.#sink.write(ZERO.subarray(0, pad4(target.length)));
      return;
    }
    if (type === S_IFCHR || type === S_IFBLK) {
      header.rdevmajor = devMajor(st.rdev);
      header.rdevminor = devMinor(st.rdev);
    }
    if (type !== S_IFREG) {
      if (type !== S_IFDIR && type !== S_IFCHR && type !== S_IFBLK && type !== S_IFIFO) return;
      header.ino = this.#nextIno++;
      if (type !== S_IFDIR) header.nlink = 1;
      await this.#sink.write(encodeHeader(header));
      return;
    }
    // Hard links: the data goes with the first name, later names carry size 0 and the same inode,
    // which the kernel, busybox cpio and GNU cpio all restore as links.
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const seen = this.#links.get(key);
      if (seen !== undefined) {
        header.ino = seen;
        await this.#sink.write(encodeHeader(header));
        return;
      }
      this.#links.set(key, this.#nextIno);
    }
    header.ino = this.#nextIno++;
    header.size = st.size;
    await this.#sink.write(encodeHeader(header));
    await this.#copyFile(path, st.size);
    await this.#sink.write(ZERO.subarray(0, pad4(st.size)));
  }

  /** Closes the archive. */
  async finish(): Promise<void> {
    await this.#sink.write(encodeTrailer());
  }

  // Reads exactly `size` bytes (as stat said) straight into the compressor's block. A file that
  // shrank meanwhile is padded with zeros, one that grew is cut: the header is already written. Its
  // new ctime makes the next freshness check rebuild the image.
  async #copyFile(path: string, size: number): Promise<void> {
    if (size === 0) return;
    const fh = await open(path, 'r');
    try {
      let left = size;
      while (left > 0) {
        const room = await this.#sink.space();
        const want = Math.min(room.length, left);
        const { bytesRead } = await fh.read(room, 0, want, null);
        if (bytesRead === 0) {
          room.fill(0, 0, want);
          this.#sink.commit(want);
          left -= want;
          continue;
        }
        this.#sink.commit(bytesRead);
        left -= bytesRead;
      }
    } finally {
      await fh.close();
    }
  }
}

/** What the freshness check compares for one entry: any change to it means the image is stale. */
export function fingerprintLine(archName: string, st: Stats): string {
  return `${archName}\0${st.mode}\0${st.uid}\0${st.gid}\0${st.size}\0${st.mtimeMs}\0${st.ctimeMs}\0${st.ino}\n`;
}

/** Sorts as `LC_ALL=C sort` does. */
export function bytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Major number of a Linux dev_t (glibc's gnu_dev_major). */
export function devMajor(rdev: number): number {
  const big = BigInt(rdev);
  return Number(((big >> 8n) & 0xfffn) | ((big >> 32n) & ~0xfffn));
}

/** Minor number of a Linux dev_t (glibc's gnu_dev_minor). */
export function devMinor(rdev: number): number {
  const big = BigInt(rdev);
  return Number((big & 0xffn) | ((big >> 12n) & ~0xffn));
}
