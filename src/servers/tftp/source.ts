/**
 * Where the blocks of a transfer come from: a file on disk, a buffer, or a stream from the generate
 * callback. `get(n)` answers synchronously when the block is at hand (the hot path of a lockstep
 * transfer), else null and the caller awaits `load(n)`. Files are read in chunks with the next chunk
 * prefetched, so a block costs no system call of its own; memory per transfer stays at two chunks.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

export interface BlockSource {
  /** Total bytes, when known in advance (tsize); null for a stream of unknown length. */
  readonly size: number | null;
  /** Payload of block n (1-based); shorter than blksize for the last one. Null: not read yet, await load(n). */
  get(n: number): Buffer | null;
  load(n: number): Promise<void>;
  /** Blocks up to `n` are acknowledged and will not be asked for again. */
  release(n: number): void;
  close(): void;
}

/** A whole buffer (generated files, netascii conversions). */
export class BufferSource implements BlockSource {
  readonly size: number;
  constructor(
    private readonly buf: Buffer,
    private readonly blksize: number,
  ) {
    this.size = buf.length;
  }
  get(n: number): Buffer {
    const start = (n - 1) * this.blksize;
    return this.buf.subarray(Math.min(start, this.buf.length), Math.min(start + this.blksize, this.buf.length));
  }
  async load(): Promise<void> {}
  release(): void {}
  close(): void {}
}

/** Target bytes per file read; a whole number of blocks, at least one. */
const CHUNK_BYTES = 128 * 1024;

/** A file on disk, read with positional reads of whole chunks. */
export class FileSource implements BlockSource {
  private readonly blocksPerChunk: number;
  private readonly chunks = new Map<number, Buffer>();
  private readonly loading = new Map<number, Promise<void>>();
  private closed = false;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly blksize: number,
  ) {
    this.blocksPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / blksize));
  }

  private chunkOf(n: number): number {
    return Math.floor((n - 1) / this.blocksPerChunk);
  }

  get(n: number): Buffer | null {
    const c = this.chunkOf(n);
    const chunk = this.chunks.get(c);
    if (!chunk) return null;
    // Past the middle of this chunk: start reading the next one so it is ready when needed.
    if ((n - 1) % this.blocksPerChunk >= this.blocksPerChunk >> 1) void this.readChunk(c + 1).catch(() => {});
    const start = ((n - 1) % this.blocksPerChunk) * this.blksize;
    return chunk.subarray(Math.min(start, chunk.length), Math.min(start + this.blksize, chunk.length));
  }

  load(n: number): Promise<void> {
    return this.readChunk(this.chunkOf(n));
  }

  private readChunk(c: number): Promise<void> {
    if (this.chunks.has(c) || this.closed) return Promise.resolve();
    const chunkBytes = this.blocksPerChunk * this.blksize;
    const position = c * chunkBytes;
    if (position > this.size) return Promise.resolve();
    let p = this.loading.get(c);
    if (p) return p;
    const length = Math.min(chunkBytes, this.size - position);
    // A fresh buffer each time: a datagram still queued in the socket may point into the previous one.
    const buf = Buffer.allocUnsafe(length);
    p = (async () => {
      let done = 0;
      while (done < length) {
        const { bytesRead } = await this.fh.read(buf, done, length - done, position + done);
        if (bytesRead === 0) throw new Error(`file shrank while being sent (expected ${this.size} bytes)`);
        done += bytesRead;
      }
      if (!this.closed) this.chunks.set(c, buf);
    })().finally(() => this.loading.delete(c));
    this.loading.set(c, p);
    return p;
  }

  release(n: number): void {
    const keepFrom = this.chunkOf(n + 1);
    for (const c of this.chunks.keys()) if (c < keepFrom) this.chunks.delete(c);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.chunks.clear();
    void this.fh.close().catch(() => {});
  }
}

/** A stream from the generate callback, cut into blocks as they are needed; only unacknowledged blocks are kept. */
export class StreamSource implements BlockSource {
  private readonly blocks = new Map<number, Buffer>();
  private readonly iter: AsyncIterator<Buffer | string>;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private nextBlock = 1;
  private ended = false;
  private finished = false;
  private reading: Promise<void> | null = null;

  constructor(
    private readonly stream: Readable,
    readonly size: number | null,
    private readonly blksize: number,
  ) {
    this.iter = stream[Symbol.asyncIterator]();
  }

  get(n: number): Buffer | null {
    return this.blocks.get(n) ?? null;
  }

  async load(n: number): Promise<void> {
    while (!this.blocks.has(n) && !this.finished) {
      if (!this.reading) this.reading = this.pull().finally(() => (this.reading = null));
      await this.reading;
    }
  }

  /** Reads one piece of the stream and cuts every block it completes (and the final short one at the end). */
  private async pull(): Promise<void> {
    const r = await this.iter.next();
    if (r.done) this.ended = true;
    else {
      const piece = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      this.pending.push(piece);
      this.pendingBytes += piece.length;
    }
    if (this.pendingBytes < this.blksize && !this.ended) return;
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    let off = 0;
    for (; all.length - off >= this.blksize; off += this.blksize) this.blocks.set(this.nextBlock++, all.subarray(off, off + this.blksize));
    if (this.ended) {
      // The final block is shorter than blksize, possibly empty: it tells the client the file ended.
      this.blocks.set(this.nextBlock++, all.subarray(off));
      off = all.length;
      this.finished = true;
    }
    this.pending = off < all.length ? [all.subarray(off)] : [];
    this.pendingBytes = all.length - off;
  }

  release(n: number): void {
    for (const k of this.blocks.keys()) if (k <= n) this.blocks.delete(k);
  }

  close(): void {
    this.blocks.clear();
    this.stream.destroy();
  }
}
