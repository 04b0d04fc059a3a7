/**
 * The TFTP server: read-only, RFC 1350 with options (RFC 2347/2348/2349/7440). It serves files
 * from a root directory and, for names not found there, asks a `generate` callback (the daemon
 * renders per-node pxelinux and iPXE files and points at packaged loaders); it knows nothing about
 * nodes. Every transfer gets its own socket (its TID) and ends in one `onTransfer` record.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { Readable } from 'node:stream';
import { open, type FileHandle } from 'node:fs/promises';
import type { Logger } from '../../log/logger.js';
import { decodePacket, encodePacket, ErrorCode, TftpDecodeError, type RequestPacket } from '../../protocol/tftp/packet.js';
import { negotiateOptions, MAX_BLKSIZE, type Negotiated } from '../../protocol/tftp/options.js';
import { normalizeRequestPath } from '../../protocol/tftp/path.js';
import { toNetascii } from '../../protocol/tftp/netascii.js';
import { BufferSource, FileSource, StreamSource, type BlockSource } from './source.js';
import { openUnderRoot } from './root.js';
import { Transfer, type TransferEnd } from './transfer.js';
import { tftpPumpPath } from '../../native/index.js';
import { PumpPool } from './native/pool.js';

export interface TftpClient {
  address: string;
  port: number;
}

/** What `generate` may answer: content (with its size when known, for tsize) or a file to serve. */
export type GeneratedFile = Buffer | Readable | { data: Buffer | Readable; size?: number | null } | { path: string };
export type GenerateHandler = (path: string, client: TftpClient) => Promise<GeneratedFile | null> | GeneratedFile | null;

/** One finished (or refused) request, as logged. */
export interface TransferRecord extends Omit<Partial<TransferEnd>, 'outcome'> {
  file: string;
  client: TftpClient;
  /** `root`, `generated`, or null when the request was refused before a file was chosen. */
  origin: 'root' | 'generated' | null;
  outcome: TransferEnd['outcome'] | 'not-found' | 'refused';
  blksize?: number;
  windowsize?: number;
  /** Who moved the data: `native` (the C pump) or `js` (this process); absent for refusals. */
  engine?: 'native' | 'js';
}

export type TftpDropReason = 'malformed' | 'unexpected' | 'duplicate' | 'superseded' | 'busy' | 'expired';

/** How long a request may wait for a transfer slot before it is dropped (PXE ROMs resend theirs within seconds). */
const MAX_WAIT_MS = 20_000;

/** The transfers by client: a Map that says when an entry leaves (a slot is free). */
class TransferTable extends Map<string, Placeholder> {
  constructor(private readonly freed: () => void) {
    super();
  }

  override delete(key: string): boolean {
    const had = super.delete(key);
    if (had) this.freed();
    return had;
  }
}

export interface TftpServerOptions {
  listen?: string;
  port?: number;
  /** Directory served (absolute); null: generated files only. */
  root: string | null;
  generate?: GenerateHandler;
  maxBlksize?: number;
  maxWindowsize?: number;
  /** Largest window burst in bytes; see NegotiationLimits.maxWindowBytes. */
  maxWindowBytes?: number;
  /** Seconds before an unacknowledged block is sent again (a client's `timeout` option overrides). */
  timeout?: number;
  retries?: number;
  /**
   * Transfers at once. More requests wait their turn (admission control in a boot storm: a PXE ROM
   * given an error does not boot), up to 8 times as many; past that they are dropped unanswered and
   * the client's own resend comes back later. A request that waited 20 s is dropped (its client
   * has resent it or given up).
   */
  maxTransfers?: number;
  /** Largest file converted for netascii mode (the conversion is held in memory). */
  maxNetasciiBytes?: number;
  /**
   * Regular files of at least this many bytes, sent in octet mode, are moved by the native pump
   * (src/native/pump.c, built at `npm ci`); null: every transfer runs in Node (config `tftp.engine: js`).
   */
  nativeMinBytes?: number | null;
  /**
   * Longest busy-poll of a pump for the next ACK, in µs (0: never; at most 10000; default 1000),
   * while few transfers run (pool.ts). Config `tftp.pumpSpinUs`.
   */
  pumpSpinUs?: number;
  /**
   * Most native pump processes: a new transfer gets an idle pump or a new one up to this limit, then
   * shares the least busy (each runs many transfers in one loop). Started on demand, kept for reuse.
   */
  nativePumps?: number;
  /** A transfer's data phase begins (after the file was found and options negotiated); each ends in one onTransfer. */
  onStart?: (t: { file: string; client: TftpClient; engine: 'native' | 'js' }) => void;
  onTransfer?: (record: TransferRecord) => void;
  /**
   * A datagram on the request port dropped: `malformed` (not a TFTP packet), `unexpected` (a packet
   * other than a request: an ACK, DATA, ERROR or OACK sent to port 69) or `duplicate` (a request
   * sent again for the transfer already running to that client port: the transfer's timer answers)
   * or `superseded` (a newer request from the same client port came before this one's transfer began).
   * Packets a transfer ignores are in its record (`strays`).
   */
  onDrop?: (reason: TftpDropReason) => void;
  /** A request that waited for a transfer slot begins, after `seconds`. */
  onWaited?: (seconds: number) => void;
  logger: Logger;
}

type Content = Buffer | Readable | { fh: FileHandle; size: number; path: string };
type Placeholder = { transfer: { abort(reason: string): void }; file: string; started: boolean };
/** What a started request carries to the engine that runs it. */
interface Run {
  key: string;
  placeholder: Placeholder;
  client: TftpClient;
  file: string;
  origin: 'root' | 'generated';
  negotiated: Negotiated;
  timeoutMs: number;
  /** onStart was called (a transfer the native pump refused and Node then sends is one transfer). */
  announced?: boolean;
}
type Found = { content: Content; size: number | null; origin: 'root' | 'generated' } | { refused: string } | null;

export interface TftpStats {
  requests: number;
  active: number;
  completed: number;
  failed: number;
  refused: number;
  malformed: number;
  bytes: number;
}

export class TftpServer {
  private readonly o: Required<Omit<TftpServerOptions, 'generate' | 'onStart' | 'onTransfer' | 'onDrop' | 'onWaited' | 'root'>> &
    Pick<TftpServerOptions, 'generate' | 'onStart' | 'onTransfer' | 'onDrop' | 'onWaited' | 'root'>;
  private socket: Socket | null = null;
  /** Transfers by client `address:port`; a slot freed lets the oldest waiting request in. */
  private readonly transfers = new TransferTable(() => this.admitWaiting());
  /** Requests waiting for a slot, oldest first (a Map keeps insertion order). */
  private readonly waiting = new Map<string, { req: RequestPacket; client: TftpClient; at: number }>();
  private admitScheduled = false;
  private pool: PumpPool | null = null;
  readonly stats: TftpStats = { requests: 0, active: 0, completed: 0, failed: 0, refused: 0, malformed: 0, bytes: 0 };

  constructor({
    listen = '0.0.0.0',
    port = 69,
    maxBlksize = MAX_BLKSIZE,
    maxWindowsize = 64,
    maxWindowBytes = 96 * 1024,
    timeout = 1,
    retries = 6,
    maxTransfers = 1024,
    maxNetasciiBytes = 16 * 1024 * 1024,
    nativeMinBytes = 64 * 1024,
    nativePumps = 16,
    pumpSpinUs = 1000,
    ...rest
  }: TftpServerOptions) {
    if (!(timeout > 0)) throw new TypeError(`tftp: timeout must be positive, got ${timeout}`);
    if (!Number.isInteger(retries) || retries < 1) throw new TypeError(`tftp: retries must be a positive integer, got ${retries}`);
    if (!Number.isInteger(nativePumps) || nativePumps < 1) throw new TypeError(`tftp: nativePumps must be a positive integer, got ${nativePumps}`);
    if (!Number.isInteger(pumpSpinUs) || pumpSpinUs < 0 || pumpSpinUs > 10_000) throw new TypeError(`tftp: pumpSpinUs must be an integer from 0 to 10000, got ${pumpSpinUs}`);
    this.o = { listen, port, maxBlksize, maxWindowsize, maxWindowBytes, timeout, retries, maxTransfers, maxNetasciiBytes, nativeMinBytes, nativePumps, pumpSpinUs, ...rest };
  }

  /** True when big files go to the native pump (it is on and has not kept failing). */
  get native(): boolean {
    return this.pool?.usable ?? false;
  }

  /** Binds the request socket; resolves with the address actually bound (port 0 picks one). */
  async listen(): Promise<{ address: string; port: number }> {
    // Before binding: a missing build is an installation error, said at once.
    const pump = this.o.nativeMinBytes !== null ? tftpPumpPath() : null;
    const socket = createSocket({ type: 'udp4', reuseAddr: false });
    socket.on('message', (msg, rinfo) => void this.onRequest(msg, rinfo));
    socket.on('error', (err) => this.o.logger.error({ err: err.message }, 'tftp request socket error'));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.o.port, this.o.listen, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    // A boot storm sends hundreds of requests at once: let them queue rather than drop.
    try {
      socket.setRecvBufferSize(4 * 1024 * 1024);
    } catch {}
    this.socket = socket;
    if (pump) this.pool = new PumpPool(pump, this.o.nativePumps, this.o.logger, { spinUs: this.o.pumpSpinUs });
    return this.address()!;
  }

  address(): { address: string; port: number } | null {
    if (!this.socket) return null;
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  /** Transfers running and requests waiting for a slot, now. */
  get load(): { active: number; waiting: number } {
    return { active: this.transfers.size, waiting: this.waiting.size };
  }

  /** Stops answering requests and aborts transfers in flight (their clients get an error). */
  async close(): Promise<void> {
    const s = this.socket;
    this.socket = null;
    this.waiting.clear();
    for (const { transfer, started } of [...this.transfers.values()]) if (started) transfer.abort('server shutting down');
    // Native transfers end when their pump says so: wait for those records, then stop the pumps.
    const pool = this.pool;
    this.pool = null;
    await pool?.close();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async onRequest(msg: Buffer, rinfo: RemoteInfo): Promise<void> {
    const client = { address: rinfo.address, port: rinfo.port };
    let req;
    try {
      req = decodePacket(msg);
    } catch (err) {
      this.stats.malformed++;
      const reason = err instanceof TftpDecodeError ? err.message : String(err);
      // A request we cannot read (a NUL inside the name ends it early, say) still gets an answer, so
      // the client stops: it is counted as refused; anything else is dropped and counted as malformed.
      const op = msg.length >= 2 ? msg.readUInt16BE(0) : 0;
      if (op === 1 || op === 2) return this.refuse(client, msg.toString('latin1', 2, Math.min(msg.length, 66)).replace(/\0.*$/s, ''), ErrorCode.ILLEGAL_OPERATION, `malformed request: ${reason}`);
      this.o.logger.debug({ client: `${client.address}:${client.port}`, reason }, 'tftp malformed packet dropped');
      this.dropped('malformed');
      return;
    }
    if (req.op === 'wrq') return this.refuse(client, req.filename, ErrorCode.ACCESS_VIOLATION, 'read-only server: writes are refused');
    if (req.op !== 'rrq') {
      this.stats.malformed++;
      this.dropped('unexpected');
      return;
    }
    this.stats.requests++;
    const key = `${client.address}:${client.port}`;
    const existing = this.transfers.get(key);
    if (existing) {
      // The client sent its request again because our first answer is slow or lost: our timer answers it.
      if (existing.file === req.filename) return this.dropped('duplicate');
      existing.transfer.abort('superseded by a new request');
    }
    if (this.transfers.size >= this.o.maxTransfers || this.waiting.size > 0) {
      const queued = this.waiting.get(key);
      if (queued && queued.req.filename === req.filename) return this.dropped('duplicate');
      if (!queued && this.waiting.size >= this.o.maxTransfers * 8) return this.dropped('busy');
      this.waiting.delete(key);
      this.waiting.set(key, { req, client, at: performance.now() });
      this.admitWaiting();
      return;
    }
    try {
      await this.startTransfer(req, client, key);
    } catch (err) {
      this.o.logger.error({ file: req.filename, client: key, err: (err as Error).message }, 'tftp request failed');
      this.refuse(client, req.filename, ErrorCode.NOT_DEFINED, 'internal error');
    }
  }

  /** Starts waiting requests, oldest first, while slots are free (once per turn of the event loop). */
  private admitWaiting(): void {
    if (this.admitScheduled || this.waiting.size === 0) return;
    this.admitScheduled = true;
    setImmediate(() => {
      this.admitScheduled = false;
      const now = performance.now();
      for (const [key, w] of this.waiting) {
        if (this.transfers.size >= this.o.maxTransfers || !this.socket) break;
        this.waiting.delete(key);
        if (now - w.at > MAX_WAIT_MS) {
          this.dropped('expired');
          continue;
        }
        if (this.transfers.has(key)) continue;
        try {
          this.o.onWaited?.((now - w.at) / 1000);
        } catch {
          // A counter must never stop a transfer.
        }
        this.startTransfer(w.req, w.client, key).catch((err: unknown) => {
          this.o.logger.error({ file: w.req.filename, client: key, err: (err as Error).message }, 'tftp request failed');
          this.refuse(w.client, w.req.filename, ErrorCode.NOT_DEFINED, 'internal error');
        });
      }
    });
  }

  private async startTransfer(req: RequestPacket, client: TftpClient, key: string): Promise<void> {
    if (req.mode === 'mail') return this.refuse(client, req.filename, ErrorCode.ILLEGAL_OPERATION, 'mail mode is not supported');
    const path = normalizeRequestPath(req.filename);
    if (!path.ok) return this.refuse(client, req.filename, ErrorCode.ACCESS_VIOLATION, `access violation: ${path.reason}`);
    const placeholder: Placeholder = { transfer: { abort: () => {} }, file: req.filename, started: false };
    this.transfers.set(key, placeholder); // a retransmitted request arriving while we look the file up is ignored
    // Only this request's own entry: a newer request of the client may have replaced it meanwhile.
    const forget = () => this.transfers.get(key) === placeholder && this.transfers.delete(key);
    let found: Found;
    try {
      found = await this.find(path.path, client);
    } catch (err) {
      forget();
      throw err;
    }
    if (found && 'refused' in found) {
      forget();
      return this.refuse(client, req.filename, ErrorCode.ACCESS_VIOLATION, `access violation: ${found.refused}`);
    }
    if (!found) {
      forget();
      return this.refuse(client, req.filename, ErrorCode.FILE_NOT_FOUND, 'file not found', 'not-found');
    }
    const origin = found.origin;
    let { content, size } = found;
    if (req.mode === 'netascii') {
      const raw = await this.whole(content, size);
      if (raw === null) {
        if (this.transfers.get(key) === placeholder) this.transfers.delete(key);
        return this.refuse(client, req.filename, ErrorCode.NOT_DEFINED, `file too large for netascii mode (over ${this.o.maxNetasciiBytes} bytes)`);
      }
      content = toNetascii(raw);
      size = content.length;
    }
    const negotiated = negotiateOptions(req.options, size, { maxBlksize: this.o.maxBlksize, maxWindowsize: this.o.maxWindowsize, maxWindowBytes: this.o.maxWindowBytes });
    const run: Run = {
      key,
      placeholder,
      client,
      file: path.path,
      origin,
      negotiated,
      // The client's RFC 2349 timeout is acknowledged and bounds our delay, but we never wait longer than our own:
      // curl asks for 6 s, and under loss every dropped block would then stall the transfer for 6 s.
      timeoutMs: Math.min(negotiated.timeout ?? Infinity, this.o.timeout) * 1000,
    };
    const min = this.o.nativeMinBytes;
    if (this.pool?.usable && min !== null && req.mode !== 'netascii' && !Buffer.isBuffer(content) && !(content instanceof Readable) && content.size >= min) {
      if (await this.startNative(run, content, req.options.tsize !== undefined)) return;
    }
    await this.startJs(run, content, size);
  }

  /** Hands the data phase to a native pump; false when it cannot take it (the caller runs it in Node). */
  private async startNative(run: Run, file: { fh: FileHandle; size: number; path: string }, tsizeAsked: boolean): Promise<boolean> {
    const st = await file.fh.stat({ bigint: true });
    if (this.transfers.get(run.key) !== run.placeholder || !this.socket || !this.pool) {
      await file.fh.close().catch(() => {});
      this.dropped('superseded'); // or shut down meanwhile
      return true;
    }
    const { negotiated } = run;
    const handle = this.pool.start(
      {
        client: run.client,
        bind: this.o.listen,
        blksize: negotiated.blksize,
        windowsize: negotiated.windowsize,
        timeoutMs: run.timeoutMs,
        retries: this.o.retries,
        tsizeAsked: tsizeAsked && negotiated.oack?.tsize !== undefined,
        size: file.size,
        path: file.path,
        dev: st.dev,
        ino: st.ino,
        oack: negotiated.oack ? encodePacket({ op: 'oack', options: negotiated.oack }) : null,
      },
      {
        onStart: () => void file.fh.close().catch(() => {}),
        onRefused: (reason) => {
          this.o.logger.debug({ file: run.file, reason }, 'tftp native pump refused the transfer; sending it from node');
          this.startJs(run, file, file.size).catch((err: unknown) => {
            this.o.logger.error({ file: run.file, err: (err as Error).message }, 'tftp request failed');
            if (this.transfers.get(run.key) === run.placeholder) this.transfers.delete(run.key);
            this.refuse(run.client, run.file, ErrorCode.NOT_DEFINED, 'internal error');
          });
        },
        onEnd: (end) => this.ended(run, handle, 'native', end),
      },
    );
    if (!handle) return false;
    run.placeholder.transfer = handle;
    run.placeholder.started = true;
    this.stats.active = this.transfers.size;
    this.started(run, 'native');
    return true;
  }

  private async startJs(run: Run, content: Content, size: number | null): Promise<void> {
    const { key, placeholder, negotiated } = run;
    const source: BlockSource = Buffer.isBuffer(content)
      ? new BufferSource(content, negotiated.blksize)
      : content instanceof Readable
        ? new StreamSource(content, size, negotiated.blksize)
        : new FileSource(content.fh, content.size, negotiated.blksize);
    let socket: Socket;
    try {
      socket = await this.transferSocket();
    } catch (err) {
      source.close();
      this.transfers.delete(key);
      throw err;
    }
    if (this.transfers.get(key) !== placeholder || !this.socket) {
      // Superseded or shut down meanwhile.
      source.close();
      socket.close();
      if (!run.announced) this.dropped('superseded');
      return;
    }
    const transfer: Transfer = new Transfer({
      socket,
      client: run.client,
      source,
      negotiated,
      timeoutMs: run.timeoutMs,
      retries: this.o.retries,
      onEnd: (end) => this.ended(run, transfer, 'js', end),
    });
    placeholder.transfer = transfer;
    placeholder.started = true;
    this.stats.active = this.transfers.size;
    this.started(run, 'js');
    transfer.start();
  }

  private started(run: Run, engine: 'native' | 'js'): void {
    if (run.announced) return;
    run.announced = true;
    try {
      this.o.onStart?.({ file: run.file, client: run.client, engine });
    } catch (err) {
      this.o.logger.error({ err: (err as Error).message }, 'tftp onStart callback threw');
    }
  }

  private ended(run: Run, transfer: unknown, engine: 'native' | 'js', end: TransferEnd): void {
    if (this.transfers.get(run.key)?.transfer === transfer) this.transfers.delete(run.key);
    this.stats.active = this.transfers.size;
    const { negotiated } = run;
    this.record({ file: run.file, client: run.client, origin: run.origin, blksize: negotiated.blksize, windowsize: negotiated.windowsize, engine, ...end });
  }

  /** The file under the root, else what `generate` makes of the name. */
  private async find(path: string, client: TftpClient): Promise<Found> {
    if (this.o.root !== null) {
      const hit = await openUnderRoot(this.o.root, path);
      if (hit.kind === 'file') return { content: { fh: hit.fh, size: hit.size, path: hit.path }, size: hit.size, origin: 'root' as const };
      if (hit.kind === 'refused') return { refused: hit.reason };
    }
    if (!this.o.generate) return null;
    const g = await this.o.generate(path, client);
    if (g === null) return null;
    if (Buffer.isBuffer(g)) return { content: g, size: g.length, origin: 'generated' as const };
    if (g instanceof Readable) return { content: g, size: null, origin: 'generated' as const };
    if ('path' in g) {
      const fh = await open(g.path, 'r');
      const st = await fh.stat();
      return { content: { fh, size: st.size, path: g.path }, size: st.size, origin: 'generated' as const };
    }
    return { content: g.data, size: Buffer.isBuffer(g.data) ? g.data.length : (g.size ?? null), origin: 'generated' as const };
  }

  /** Whole content in memory for netascii conversion, or null when over the limit. */
  private async whole(content: Content, size: number | null): Promise<Buffer | null> {
    if (Buffer.isBuffer(content)) return content.length > this.o.maxNetasciiBytes ? null : content;
    if (size !== null && size > this.o.maxNetasciiBytes) {
      if (content instanceof Readable) content.destroy();
      else await content.fh.close();
      return null;
    }
    if (!(content instanceof Readable)) {
      try {
        return await content.fh.readFile();
      } finally {
        await content.fh.close();
      }
    }
    const parts: Buffer[] = [];
    let total = 0;
    for await (const piece of content) {
      const b = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as string);
      total += b.length;
      if (total > this.o.maxNetasciiBytes) {
        content.destroy();
        return null;
      }
      parts.push(b);
    }
    return Buffer.concat(parts);
  }

  private async transferSocket(): Promise<Socket> {
    const s = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(0, this.o.listen, () => {
        s.off('error', reject);
        resolve();
      });
    });
    try {
      s.setSendBufferSize(1024 * 1024);
      s.setRecvBufferSize(256 * 1024);
    } catch {}
    return s;
  }

  /** Answers a request with an error packet from the request socket, and records it. */
  private refuse(client: TftpClient, file: string, code: number, message: string, outcome: 'refused' | 'not-found' = 'refused'): void {
    try {
      this.socket?.send(encodePacket({ op: 'error', code, message }), client.port, client.address);
    } catch {}
    this.record({ file, client, origin: null, outcome, reason: message });
  }

  private dropped(reason: TftpDropReason): void {
    try {
      this.o.onDrop?.(reason);
    } catch (err) {
      this.o.logger.error({ err: (err as Error).message }, 'tftp onDrop callback threw');
    }
  }

  private record(r: TransferRecord): void {
    const fields = {
      file: r.file,
      client: `${r.client.address}:${r.client.port}`,
      outcome: r.outcome,
      bytes: r.bytes,
      ms: r.durationMs,
      blksize: r.blksize,
      windowsize: r.windowsize,
      retransmits: r.retransmits || undefined,
      strays: r.strays || undefined,
      engine: r.engine,
      reason: r.reason ?? undefined,
    };
    if (r.outcome === 'ok') {
      this.stats.completed++;
      this.stats.bytes += r.bytes ?? 0;
      this.o.logger.info(fields, 'tftp transfer finished');
    } else if (r.outcome === 'probe' || r.outcome === 'options-refused' || r.outcome === 'not-found') {
      // UEFI firmware asks for the size then aborts; pxelinux probes a dozen config names: both are normal.
      this.o.logger.debug(fields, r.outcome === 'not-found' ? 'tftp file not found' : 'tftp size probe / option fallback');
    } else if (r.outcome === 'refused') {
      this.stats.refused++;
      this.o.logger.warn(fields, 'tftp request refused');
    } else {
      this.stats.failed++;
      this.o.logger.warn(fields, 'tftp transfer failed');
    }
    try {
      this.o.onTransfer?.(r);
    } catch (err) {
      this.o.logger.error({ err: (err as Error).message }, 'tftp onTransfer callback threw');
    }
  }
}
