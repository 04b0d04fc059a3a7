/**
 * One read transfer, from its own socket (its TID, RFC 1350): OACK or DATA 1, then a window of
 * blocks per acknowledgement (RFC 7440; a window of one is RFC 1350's lockstep). The rules that keep
 * it correct under loss: only an ACK that advances the window sends anything (a duplicate ACK sends
 * nothing, so no Sorcerer's Apprentice storm), an ACK inside the window restarts it after the last
 * block the client has (the client saw a gap), old or stray ACKs are ignored, and the timer resends
 * the window with doubling delays until `retries` is spent, then the transfer is dropped and freed.
 */
import type { Socket, RemoteInfo } from 'node:dgram';
import { dataHeader, encodePacket, ErrorCode, Opcode } from '../../protocol/tftp/packet.js';
import type { Negotiated } from '../../protocol/tftp/options.js';
import type { BlockSource } from './source.js';

/** How a transfer ended. `probe`: the client only wanted the size (UEFI firmware does this first). */
export type TransferOutcome = 'ok' | 'probe' | 'options-refused' | 'aborted' | 'timeout' | 'error';

export interface TransferEnd {
  outcome: TransferOutcome;
  reason: string | null;
  /** Bytes the client acknowledged. */
  bytes: number;
  /** Blocks sent again after a timeout or a gap reported by the client. */
  retransmits: number;
  durationMs: number;
  /** Packets ignored: from another port (answered with error 5), runts, other opcodes, ACKs that fit no block sent. */
  strays: number;
}

export interface TransferOptions {
  socket: Socket;
  client: { address: string; port: number };
  source: BlockSource;
  negotiated: Negotiated;
  /** Base retransmission delay, milliseconds. */
  timeoutMs: number;
  retries: number;
  onEnd(end: TransferEnd): void;
}

/** Longest backoff, as a multiple of the base timeout. */
const MAX_BACKOFF = 8;

export class Transfer {
  private readonly o: TransferOptions;
  private readonly blksize: number;
  private readonly window: number;
  private phase: 'oack' | 'data' | 'done' = 'data';
  /** Highest block the client acknowledged (absolute, not wrapped at 65536). */
  private acked = 0;
  /** Next block to send, and the highest sent so far. */
  private next = 1;
  private sentUpTo = 0;
  private lastBlock: number | null = null;
  private lastLen = 0;
  private tries = 0;
  private retransmits = 0;
  private loading = false;
  private timer: NodeJS.Timeout | null = null;
  private timerDelay = 0;
  private readonly started = Date.now();
  /** Packets from other ports answered with error 5, and stray packets ignored. */
  strays = 0;

  constructor(options: TransferOptions) {
    this.o = options;
    this.blksize = options.negotiated.blksize;
    this.window = options.negotiated.windowsize;
    const size = options.source.size;
    if (size !== null) {
      this.lastBlock = Math.floor(size / this.blksize) + 1;
      this.lastLen = size % this.blksize;
    }
    options.socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    options.socket.on('error', (err) => this.finish('error', `socket: ${err.message}`));
  }

  start(): void {
    if (this.o.negotiated.oack) {
      this.phase = 'oack';
      this.sendOack();
    } else {
      this.sendWindow();
    }
    this.arm();
  }

  /** Ends the transfer from outside (server shutdown), telling the client. */
  abort(reason: string): void {
    if (this.phase === 'done') return;
    this.sendRaw(encodePacket({ op: 'error', code: ErrorCode.NOT_DEFINED, message: reason }));
    this.finish('aborted', reason);
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.phase === 'done') return;
    if (rinfo.port !== this.o.client.port || rinfo.address !== this.o.client.address) {
      // Someone else (or an old socket of the client): tell it, and leave this transfer alone.
      this.strays++;
      this.o.socket.send(encodePacket({ op: 'error', code: ErrorCode.UNKNOWN_TID, message: 'unknown transfer id' }), rinfo.port, rinfo.address);
      return;
    }
    if (msg.length < 4) return void this.strays++;
    const op = msg.readUInt16BE(0);
    if (op === Opcode.ACK) this.onAck(msg.readUInt16BE(2));
    else if (op === Opcode.ERROR) this.onClientError(msg.readUInt16BE(2), msg.toString('latin1', 4).replace(/\0.*$/s, ''));
    else this.strays++;
  }

  private onAck(block: number): void {
    if (this.phase === 'oack') {
      if (block !== 0) return void this.strays++;
      this.phase = 'data';
      this.progress();
      this.sendWindow();
      return;
    }
    // The absolute block this 16-bit number means: the one in (acked, sentUpTo] with these low bits.
    const delta = (block - this.acked) & 0xffff;
    if (delta === 0 || this.acked + delta > this.sentUpTo) return void this.strays++; // duplicate, old or bogus: send nothing
    if (this.acked + delta < this.sentUpTo) this.retransmits += this.sentUpTo - (this.acked + delta);
    this.acked += delta;
    this.o.source.release(this.acked);
    if (this.lastBlock !== null && this.acked >= this.lastBlock) return this.finish('ok', null);
    this.next = this.acked + 1;
    this.progress();
    this.sendWindow();
  }

  private onClientError(code: number, message: string): void {
    const tsizeAsked = this.o.negotiated.oack?.tsize !== undefined;
    if (this.phase === 'oack' && tsizeAsked) return this.finish('probe', `client ended after the size (error ${code}${message ? `: ${message}` : ''})`);
    if (this.phase === 'oack' && code === ErrorCode.OPTION_REFUSED) return this.finish('options-refused', message || 'client refused the options');
    this.finish('aborted', `client error ${code}${message ? `: ${message}` : ''}`);
  }

  /** Sends blocks `next` .. acked + window; pauses while a block is being read. */
  private sendWindow(): void {
    if (this.loading || this.phase !== 'data') return;
    let end = this.acked + this.window;
    if (this.lastBlock !== null && end > this.lastBlock) end = this.lastBlock;
    while (this.next <= end) {
      const n = this.next;
      const payload = this.o.source.get(n);
      if (payload === null) {
        this.loading = true;
        this.o.source.load(n).then(
          () => {
            this.loading = false;
            if (this.o.source.get(n) === null && this.lastBlock === null) return this.finish('error', `block ${n} could not be produced`);
            this.sendWindow();
          },
          (err: Error) => this.finish('error', `reading: ${err.message}`),
        );
        return;
      }
      this.o.socket.send([dataHeader(n), payload], this.o.client.port, this.o.client.address);
      if (n > this.sentUpTo) this.sentUpTo = n;
      this.next = n + 1;
      if (payload.length < this.blksize) {
        this.lastBlock = n;
        this.lastLen = payload.length;
        break;
      }
    }
  }

  private sendOack(): void {
    this.sendRaw(encodePacket({ op: 'oack', options: this.o.negotiated.oack! }));
  }

  private sendRaw(buf: Buffer): void {
    try {
      this.o.socket.send(buf, this.o.client.port, this.o.client.address);
    } catch {}
  }

  /** The client moved forward: reset the tries and the backoff. */
  private progress(): void {
    this.tries = 0;
    if (this.timer && this.timerDelay === this.o.timeoutMs) this.timer.refresh();
    else this.arm();
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerDelay = this.o.timeoutMs * Math.min(2 ** this.tries, MAX_BACKOFF);
    this.timer = setTimeout(() => this.onTimeout(), this.timerDelay);
  }

  private onTimeout(): void {
    if (this.phase === 'done') return;
    if (++this.tries > this.o.retries) {
      const what = this.phase === 'oack' ? 'option acknowledgement' : `block ${this.acked + 1}`;
      return this.finish('timeout', `no acknowledgement of ${what} after ${this.o.retries} retries`);
    }
    if (this.phase === 'oack') this.sendOack();
    else {
      this.retransmits += Math.max(0, this.sentUpTo - this.acked);
      this.next = this.acked + 1;
      this.sendWindow();
    }
    this.arm();
  }

  private finish(outcome: TransferOutcome, reason: string | null): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    if (this.timer) clearTimeout(this.timer);
    this.o.source.close();
    try {
      this.o.socket.close();
    } catch {}
    const bytes = outcome === 'ok' && this.lastBlock !== null ? (this.lastBlock - 1) * this.blksize + this.lastLen : this.acked * this.blksize;
    this.o.onEnd({ outcome, reason, bytes, retransmits: this.retransmits, durationMs: Date.now() - this.started, strays: this.strays });
  }
}
