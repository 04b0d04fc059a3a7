/**
 * A gzip sink that compresses on every core, as pigz does: the byte stream is cut into fixed blocks,
 * each block becomes its own gzip member (compressed on libuv's thread pool), and the members are
 * written in order. Concatenated members are a valid gzip file (RFC 1952 section 2.2) that `gzip -d`,
 * busybox `zcat` and the kernel read.
 *
 * The kernel reads such a file as an initramfs only when no member ends inside a cpio entry (it
 * checks, after each member, that its cpio parser is between entries: "junk within compressed
 * archive" otherwise). So a block is cut only at an entry boundary the writer announces with
 * `boundary()`: it grows past `blockSize` until the entry being written is complete. Memory is
 * bounded by `parallel + 1` blocks of `blockSize`, plus the largest single entry.
 */
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import { gzip as gzipCb, constants as zc } from 'node:zlib';

const gzip = promisify(gzipCb);

export interface ParallelGzipOptions {
  /** zlib level 1..9 (default 6, as gzip). */
  level?: number;
  /** Bytes per gzip member (default 4 MiB; smaller costs ratio, larger costs memory). */
  blockSize?: number;
  /** Blocks compressed at once (default: the number of cores). */
  parallel?: number;
}

/** Streams bytes into `out` as a multi-member gzip, hashing the compressed bytes with sha256. */
export class ParallelGzip {
  readonly #out: FileHandle;
  readonly #level: number;
  readonly #blockSize: number;
  readonly #parallel: number;
  readonly #sha: Hash = createHash('sha256');
  readonly #pending: Array<{ block: Buffer; member: Promise<Buffer> }> = [];
  /** Blocks whose compression finished, reused so memory stays the same from the first block to the last. */
  readonly #free: Buffer[] = [];
  #block: Buffer;
  #fill = 0;
  #written = 0;
  #input = 0;

  constructor(out: FileHandle, { level = 6, blockSize = 4 << 20, parallel = availableParallelism() }: ParallelGzipOptions = {}) {
    if (!Number.isInteger(level) || level < 1 || level > 9) throw new TypeError(`gzip level must be 1..9, not ${level}`);
    if (blockSize < 64 * 1024) throw new TypeError(`gzip block size must be at least 64 KiB, not ${blockSize}`);
    this.#out = out;
    this.#level = level;
    this.#blockSize = blockSize;
    this.#parallel = Math.max(1, parallel);
    this.#block = Buffer.allocUnsafe(blockSize);
  }

  /** Uncompressed bytes accepted so far. */
  get bytesIn(): number {
    return this.#input;
  }

  /** Compressed bytes written so far. */
  get bytesOut(): number {
    return this.#written;
  }

  /**
   * The free part of the current block, for callers that read file data straight into it
   * (no intermediate copy); report what they filled with `commit(n)`. A full block grows: it is
   * only cut at a `boundary()`.
   */
  async space(): Promise<Buffer> {
    if (this.#fill === this.#block.length) {
      const bigger = Buffer.allocUnsafe(this.#block.length * 2);
      this.#block.copy(bigger, 0, 0, this.#fill);
      this.#block = bigger;
    }
    return this.#block.subarray(this.#fill);
  }

  /** The bytes so far end a whole cpio entry: the block may be cut here (it is once it holds blockSize). */
  async boundary(): Promise<void> {
    if (this.#fill >= this.#blockSize) await this.#flushBlock();
  }

  /** Marks `n` bytes of the buffer returned by `space()` as filled. */
  commit(n: number): void {
    this.#fill += n;
    this.#input += n;
  }

  /** Appends bytes (headers, small data). */
  async write(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const room = await this.space();
      const n = Math.min(room.length, buf.length - off);
      buf.copy(room, 0, off, off + n);
      this.commit(n);
      off += n;
    }
  }

  /** Flushes the last block, writes everything out; returns the sha256 of the compressed file. */
  async end(): Promise<{ sha256: string; bytes: number }> {
    if (this.#fill > 0 || this.#written === 0 && this.#pending.length === 0) await this.#flushBlock();
    while (this.#pending.length > 0) await this.#drainOne();
    return { sha256: this.#sha.digest('hex'), bytes: this.#written };
  }

  async #flushBlock(): Promise<void> {
    const block = this.#block;
    const member = gzip(block.subarray(0, this.#fill), { level: this.#level, memLevel: 9, strategy: zc.Z_DEFAULT_STRATEGY });
    member.catch(() => {}); // awaited in order by #drainOne; this only keeps an early failure from being "unhandled"
    this.#pending.push({ block, member });
    // zlib reads the block until its promise settles: the next one is a free (finished) block or a new one.
    this.#block = this.#free.pop() ?? Buffer.allocUnsafe(this.#blockSize);
    this.#fill = 0;
    while (this.#pending.length > this.#parallel) await this.#drainOne();
  }

  async #drainOne(): Promise<void> {
    const { block, member: pending } = this.#pending.shift()!;
    const member = await pending;
    // Only blocks of the standard size are kept: one grown for a large entry goes to the collector.
    if (block.length === this.#blockSize) this.#free.push(block);
    this.#sha.update(member);
    let off = 0;
    while (off < member.length) {
      const { bytesWritten } = await this.#out.write(member, off, member.length - off);
      off += bytesWritten;
    }
    this.#written += member.length;
  }
}
