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

  /**
   * A whole lockstep read; resolves with the content (throws on an error packet). With a `gate`, the
   * first answer is reported and not acknowledged until the gate opens (many transfers held at once).
   */
  async get(port: number, filename: string, options: Record<string, string> = {}, gate?: { arrived(): void; open: Promise<void> }): Promise<Buffer> {
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
      if (gate && m.p.op !== 'error') {
        gate.arrived();
        await gate.open;
        gate = undefined;
      }
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

/**
 * A windowed read (RFC 7440) as a careful receiver does it: ACK each full window, ACK the last
 * in-order block as soon as a gap shows, and ACK again when nothing arrives for `timeoutMs`. No
 * client installed here does this correctly under loss (atftp 0.8 stops acknowledging after one
 * duplicate), so the loss test uses this one for windowsize.
 */
export async function windowedGet(
  socket: Socket,
  host: string,
  port: number,
  filename: string,
  blksize: number,
  windowsize: number,
  timeoutMs = 200,
): Promise<Buffer> {
  const parts: Buffer[] = [];
  let expect = 1;
  let tid = 0;
  let inWindow = 0;
  let done = false;
  let lastAt = Date.now();
  let tries = 0;
  const send = (p: TftpPacket, to: number) => socket.send(encodePacket(p), to, host);
  return new Promise<Buffer>((resolve, reject) => {
    const timer = setInterval(() => {
      if (Date.now() - lastAt < timeoutMs) return;
      if (++tries > 50) return finish(new Error(`${filename}: no data for ${tries * timeoutMs} ms`));
      lastAt = Date.now();
      if (tid === 0) send({ op: 'rrq', filename, mode: 'octet', options: { blksize: String(blksize), windowsize: String(windowsize) } }, port);
      else send({ op: 'ack', block: (expect - 1) & 0xffff }, tid);
    }, timeoutMs / 4);
    const finish = (err: Error | null) => {
      clearInterval(timer);
      socket.off('message', onMessage);
      if (err) reject(err);
      else resolve(Buffer.concat(parts));
    };
    const onMessage = (msg: Buffer, rinfo: { port: number }) => {
      if (done) return;
      let p: TftpPacket;
      try {
        p = decodePacket(msg);
      } catch {
        return;
      }
      if (tid !== 0 && rinfo.port !== tid) return;
      if (p.op === 'error') return finish(new Error(`${filename}: error ${p.code}: ${p.message}`));
      lastAt = Date.now();
      tries = 0;
      if (p.op === 'oack') {
        tid = rinfo.port;
        if (expect === 1) send({ op: 'ack', block: 0 }, tid);
        return;
      }
      if (p.op !== 'data') return;
      tid = rinfo.port;
      if (p.block !== (expect & 0xffff)) {
        // A gap (or a duplicate): say where we are, once per window.
        if (inWindow !== -1) send({ op: 'ack', block: (expect - 1) & 0xffff }, tid);
        inWindow = -1;
        return;
      }
      parts.push(Buffer.from(p.data));
      expect++;
      inWindow = inWindow === -1 ? 1 : inWindow + 1;
      const last = p.data.length < blksize;
      if (last || inWindow >= windowsize) {
        send({ op: 'ack', block: p.block }, tid);
        inWindow = 0;
      }
      if (last) {
        done = true;
        finish(null);
      }
    };
    socket.on('message', onMessage);
    send({ op: 'rrq', filename, mode: 'octet', options: { blksize: String(blksize), windowsize: String(windowsize) } }, port);
  });
}
