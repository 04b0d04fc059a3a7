/**
 * The native pumps (src/native/pump.c, built at `npm ci`), long-lived child processes each running
 * many transfers in one epoll loop: Node hands a job (file, client, negotiated options, the OACK) to
 * the least busy pump and hears back `started`, `refused` (serve it in Node instead) and the end
 * (outcome, bytes, resent blocks, duration), so the transfer record is the same as for a transfer
 * run in Node. A pump that dies ends its transfers as errors and is replaced on the next job; one
 * that keeps dying turns the native path off for this server.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { availableParallelism } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { encodeFrame, FrameReader } from '../../../util/frames.js';
import type { Logger } from '../../../log/logger.js';
import type { TransferEnd, TransferOutcome } from '../transfer.js';

export interface PumpJob {
  client: { address: string; port: number };
  /** Local IPv4 address the transfer socket binds to (0.0.0.0: any). */
  bind: string;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  retries: number;
  /** The request asked for tsize: an error after the OACK is then a size probe. */
  tsizeAsked: boolean;
  size: number;
  /** The file as Node checked it: the pump opens `path` and serves it only if it is still this inode. */
  path: string;
  dev: bigint;
  ino: bigint;
  /** The encoded OACK packet, or null to start with DATA 1. */
  oack: Buffer | null;
}

export interface PumpHandlers {
  /** The pump has the file and its socket, and sent the first packet. */
  onStart(): void;
  /** The pump could not take the job (nothing was sent): serve it another way. */
  onRefused(reason: string): void;
  onEnd(end: TransferEnd): void;
}

export interface PumpTransfer {
  abort(reason: string): void;
}

const OUTCOMES: TransferOutcome[] = ['ok', 'probe', 'options-refused', 'aborted', 'timeout', 'error'];

function ipv4(a: string): Buffer | null {
  const parts = a.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) < 256)) return null;
  return Buffer.from(parts.map(Number));
}

/** The job frame payload (layout documented in pump.c). Null when an address is not IPv4. */
export function encodeJob(job: PumpJob): Buffer | null {
  const client = ipv4(job.client.address);
  const bind = ipv4(job.bind);
  if (!client || !bind) return null;
  const oack = job.oack ?? Buffer.alloc(0);
  const h = Buffer.alloc(47);
  client.copy(h, 0);
  h.writeUInt16BE(job.client.port, 4);
  bind.copy(h, 6);
  h.writeUInt16BE(job.blksize, 10);
  h.writeUInt16BE(job.windowsize, 12);
  h.writeUInt32BE(Math.max(1, Math.round(job.timeoutMs)), 14);
  h.writeUInt16BE(Math.min(job.retries, 0xffff), 18);
  h.writeUInt8(job.tsizeAsked ? 1 : 0, 20);
  h.writeBigUInt64BE(BigInt(job.size), 21);
  h.writeBigUInt64BE(job.dev, 29);
  h.writeBigUInt64BE(job.ino, 37);
  h.writeUInt16BE(oack.length, 45);
  return Buffer.concat([h, oack, Buffer.from(job.path)]);
}

interface Pending extends PumpHandlers {
  started: boolean;
}

/** One pump process. */
class Pump {
  readonly jobs = new Map<number, Pending>();
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private readonly frames = new FrameReader();
  alive = true;
  private exited: Promise<void>;

  constructor(
    bin: string,
    spinUs: number,
    private readonly logger: Logger,
    private readonly onDeath: (pump: Pump) => void,
    private readonly onJobEnd: () => void,
  ) {
    this.child = spawn(bin, [String(spinUs)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.once('close', () => resolve()));
    this.child.stdout.on('data', (d: Buffer) => this.onData(d));
    this.child.stderr.on('data', (d: Buffer) => this.logger.warn({ err: d.toString().trim() }, 'tftp native pump'));
    this.child.stdin.on('error', () => {}); // a dead pump is handled on 'exit'
    this.child.on('error', (err) => this.die(`native pump: ${err.message}`));
    // 'close', not 'exit': every frame the pump wrote before dying is read first.
    this.child.on('close', (code, signal) => this.die(`native pump exited (${signal ?? `code ${code}`})`));
    // Idle pumps must not keep a process alive; the server's own socket does while it listens.
    this.child.unref();
    for (const s of [this.child.stdout, this.child.stderr, this.child.stdin]) (s as unknown as { unref?: () => void }).unref?.();
  }

  send(type: 'J' | 'A' | 'P', id: number, payload: Buffer): void {
    if (this.alive) this.child.stdin.write(encodeFrame(type, id, payload));
  }

  private onData(d: Buffer): void {
    this.frames.push(d, (type, id, p) => {
      const job = this.jobs.get(id);
      if (!job) return;
      if (type === 'S') {
        job.started = true;
        job.onStart();
      } else if (type === 'F') {
        this.jobs.delete(id);
        this.onJobEnd();
        job.onRefused(p.toString());
      } else if (type === 'E') {
        this.jobs.delete(id);
        this.onJobEnd();
        job.onEnd({
          outcome: OUTCOMES[p[0]!] ?? 'error',
          bytes: Number(p.readBigUInt64BE(1)),
          retransmits: p.readUInt32BE(9),
          durationMs: p.readUInt32BE(13),
          strays: p.readUInt32BE(17),
          reason: p.length > 21 ? p.toString('utf8', 21) : null,
        });
      }
    });
  }

  private die(reason: string): void {
    if (!this.alive) return;
    this.alive = false;
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    if (jobs.length) this.logger.error({ transfers: jobs.length, reason }, 'tftp native pump died');
    for (const j of jobs) {
      if (j.started) j.onEnd({ outcome: 'error', reason, bytes: 0, retransmits: 0, durationMs: 0, strays: 0 });
      else j.onRefused(reason);
    }
    this.onDeath(this);
  }

  /** Ends the pump: it tells the clients of transfers still running, then exits. */
  async close(): Promise<void> {
    if (this.alive) this.child.stdin.end();
    await this.exited;
  }
}

/** Pumps that run transfers; `start` spreads jobs to the least busy. */
export class PumpPool {
  private readonly pumps: Array<Pump | null>;
  private nextId = 1;
  private deaths: number[] = [];
  private disabled = false;
  /** What the pumps were last told about busy-polling (pump.c, spin()). */
  private spinning = false;

  private readonly spinBelow: number;
  private readonly spinUs: number;

  /**
   * @param spinBelow the pumps may busy-poll for ACKs while at most this many transfers run in all of
   *   them (default: half the CPUs, at least 1): a polling pump keeps a CPU busy, which is free only
   *   while few transfers run; with more, each wakes on its ACK as usual.
   * @param spinUs how long one busy-poll lasts at most, in µs (the pump's argument; 0: never poll).
   */
  constructor(
    private readonly bin: string,
    count: number,
    private readonly logger: Logger,
    { spinBelow = Math.max(1, Math.floor(availableParallelism() / 2)), spinUs = 1000 }: { spinBelow?: number; spinUs?: number } = {},
  ) {
    this.spinBelow = spinBelow;
    this.spinUs = spinUs;
    this.pumps = Array.from({ length: Math.max(1, count) }, () => null);
  }

  /** Tells every pump whether it may busy-poll when that changes, and a new pump in any case. */
  private updateSpin(fresh?: Pump): void {
    const spin = this.active <= this.spinBelow;
    const changed = spin !== this.spinning;
    this.spinning = spin;
    const msg = Buffer.from([spin ? 1 : 0]);
    for (const p of changed ? this.pumps : [fresh]) p?.send('P', 0, msg);
  }

  /** False once pumps kept dying: every transfer then runs in Node. */
  get usable(): boolean {
    return !this.disabled;
  }

  /** Transfers the pumps run now. */
  get active(): number {
    return this.pumps.reduce((n, p) => n + (p?.jobs.size ?? 0), 0);
  }

  /** Hands a transfer to a pump; null when the job cannot go native (then nothing happened). */
  start(job: PumpJob, handlers: PumpHandlers): PumpTransfer | null {
    if (this.disabled) return null;
    const payload = encodeJob(job);
    if (!payload) return null;
    // An idle pump, else a new one while there is room (a process per transfer, like tftpd-hpa's fork, up to
    // the limit), else the least busy.
    let best = -1;
    let empty = -1;
    for (let i = 0; i < this.pumps.length; i++) {
      const p = this.pumps[i];
      if (!p) {
        if (empty < 0) empty = i;
      } else if (best < 0 || p.jobs.size < this.pumps[best]!.jobs.size) best = i;
    }
    if (empty >= 0 && (best < 0 || this.pumps[best]!.jobs.size > 0)) best = empty;
    let pump = this.pumps[best];
    const fresh = !pump;
    if (!pump) {
      pump = new Pump(
        this.bin,
        this.spinUs,
        this.logger,
        (dead) => this.onDeath(dead),
        () => this.updateSpin(),
      );
      this.pumps[best] = pump;
    }
    const id = this.nextId++;
    if (this.nextId > 0xffffffff) this.nextId = 1;
    pump.jobs.set(id, { ...handlers, started: false });
    // The policy first (a new pump learns the current one), so the job never runs under a stale one.
    this.updateSpin(fresh ? pump : undefined);
    pump.send('J', id, payload);
    const owner = pump;
    return { abort: (reason) => owner.send('A', id, Buffer.from(reason)) };
  }

  private onDeath(dead: Pump): void {
    const i = this.pumps.indexOf(dead);
    if (i >= 0) this.pumps[i] = null;
    this.updateSpin();
    if (this.closing) return;
    const now = Date.now();
    this.deaths = [...this.deaths.filter((t) => now - t < 60_000), now];
    if (this.deaths.length >= 3 && !this.disabled) {
      this.disabled = true;
      this.logger.error({}, 'tftp native pump died 3 times within a minute: transfers run in node from now on');
    }
  }

  private closing = false;

  /** Waits (bounded) for the transfers in the pumps to end, then stops them. */
  async close(waitMs = 3000): Promise<void> {
    const deadline = Date.now() + waitMs;
    while (this.active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    this.closing = true;
    await Promise.all(this.pumps.map((p) => p?.close()));
  }
}
