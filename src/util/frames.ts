/**
 * The framing spoken with the C helpers (spawner.c, pump.c) over their stdin/stdout: a one-byte
 * type, a 32-bit job id and a 32-bit payload length, big-endian, then the payload.
 */

export const FRAME_HEAD = 9;

/** One frame: `type` is one latin1 character. */
export function encodeFrame(type: string, id: number, payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(FRAME_HEAD);
  head.write(type, 0, 'latin1');
  head.writeUInt32BE(id, 1);
  head.writeUInt32BE(payload.length, 5);
  return Buffer.concat([head, payload]);
}

/** Reassembles frames from stream chunks. Payloads are views into the chunk: copy one that must outlive the call. */
export class FrameReader {
  #pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer, onFrame: (type: string, id: number, payload: Buffer) => void): void {
    const buf = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    let off = 0;
    while (buf.length - off >= FRAME_HEAD) {
      const len = buf.readUInt32BE(off + 5);
      if (buf.length - off - FRAME_HEAD < len) break;
      const type = String.fromCharCode(buf[off]!);
      const id = buf.readUInt32BE(off + 1);
      const payload = buf.subarray(off + FRAME_HEAD, off + FRAME_HEAD + len);
      off += FRAME_HEAD + len;
      onFrame(type, id, payload);
    }
    // A copy: the rest of this chunk must not pin the whole chunk until the next one.
    this.#pending = off < buf.length ? Buffer.from(buf.subarray(off)) : Buffer.alloc(0);
  }

  /** Forgets a partial frame (the helper process was replaced). */
  reset(): void {
    this.#pending = Buffer.alloc(0);
  }
}
