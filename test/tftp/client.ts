/**
 * A minimal TFTP client on a raw UDP socket, for what the real clients (curl, tftp-hpa, atftp) cannot
 * be made to do: answer an OACK with an error like UEFI firmware, send duplicate or foreign ACKs,
 * stop acknowledging, or run 600 transfers at once from one process. Real clients cover the rest.
 */
import { createSocket, type Socket } from 'node:dgram';
import { decodePacket, encodePacket, type TftpPacket } from '../../src/protocol/tftp/packet.js';

export class RawClient {
  readonly socket: Socket;
  private queue: Array<{ p: TftpPacket; port: number }> = [];
  private waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (msg, rinfo) => {
      this.queue.push({ p: decodePacket(msg), port: rinfo.port });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async open(): Promise<RawClient> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    return new RawClient(s);
  }

  send(p: TftpPacket, port: number): void {
    this.socket.send(encodePacket(p), port, '127.0.0.1');
  }

  /** The next packet, or null after `ms`. */
  async next(ms = 2000): Promise<{ p: TftpPacket; port: number } | null> {
    const deadline = Date.now() + ms;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.queue.shift()!;
  }

  /** Packets arriving within `ms`. */
  async drain(ms: number): Promise<TftpPacket[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.queue.splice(0).map((q) => q.p);
  }

  /** A whole lockstep read; resolves with the content (throws on an error packet). */
  async get(port: number, filename: string, options: Record<string, string> = {}): Promise<Buffer> {
    this.send({ op: 'rrq', filename, mode: 'octet', options }, port);
    const parts: Buffer[] = [];
    let blksize = 512;
    let expect = 1;
    let lastPort = 0;
    for (let tries = 0; ; ) {
      const m = await this.next(1000);
      if (!m) {
        // Like a real client: ask again while nothing came back (a request can be dropped in a burst).
        if (++tries < 6) {
          if (expect === 1 && lastPort === 0) this.send({ op: 'rrq', filename, mode: 'octet', options }, port);
          else this.send({ op: 'ack', block: (expect - 1) & 0xffff }, lastPort);
          continue;
        }
        throw new Error(`${filename}: timed out waiting for block ${expect}`);
      }
      tries = 0;
      lastPort = m.port;
      if (m.p.op === 'error') throw new Error(`${filename}: error ${m.p.code}: ${m.p.message}`);
      if (m.p.op === 'oack') {
        if (m.p.options.blksize) blksize = Number(m.p.options.blksize);
        this.send({ op: 'ack', block: 0 }, m.port);
        continue;
      }
      if (m.p.op !== 'data') continue;
      if (m.p.block === (expect & 0xffff)) {
        parts.push(Buffer.from(m.p.data));
        expect++;
      }
      this.send({ op: 'ack', block: m.p.block }, m.port);
      if (m.p.block === ((expect - 1) & 0xffff) && m.p.data.length < blksize) return Buffer.concat(parts);
    }
  }

  close(): void {
    this.socket.close();
  }
}
