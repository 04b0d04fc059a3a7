/**
 * Spawning through a small long-lived spawner process (src/native/spawner.c, built at `npm ci`): it
 * forks with vfork() and execs, so a boot storm's thousands of fork/exec never block the event loop
 * that also answers DHCP and TFTP (forking the daemon itself blocks it until the child has exec'd).
 * The daemon only writes a request frame and reads output frames. The spawner is started with the
 * engine, restarted if it dies (jobs in flight then fail with a clear error), and unref'd while idle
 * so it never keeps a process alive by itself.
 *
 * Protocol (both ways): frames of `type(1 byte) id(u32 BE) length(u32 BE) payload` (util/frames.ts).
 *  to the spawner:   R id "path\0cwd\0K=V\0K=V..."  run;   K id "TERM"|"KILL"  signal the job's process group
 *  from the spawner: O id bytes (stdout)   E id bytes (stderr)   X id "code signo" (exited, pipes closed)
 *                    F id message (could not start)
 * When its stdin closes it sends SIGTERM to every job's group (SIGKILL 3 s later) and exits.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { encodeFrame, FrameReader } from '../../util/frames.js';
import type { Logger } from '../../log/logger.js';
import type { JobHandle, JobHandlers, SpawnJob, Spawner } from './types.js';

const SIGNAL_NAMES = new Map<number, string>(Object.entries(osConstants.signals).map(([name, n]) => [n, name]));

export class ProcessSpawner implements Spawner {
  /** The spawner executable. */
  readonly #bin: string;
  readonly #log: Logger;
  #child: ChildProcessByStdio<Writable, Readable, Readable> | undefined;
  #jobs = new Map<number, JobHandlers>();
  #nextId = 1;
  #queue: Buffer[] = [];
  readonly #frames = new FrameReader();
  #closed = false;

  constructor({ bin, logger }: { bin: string; logger: Logger }) {
    if (!bin) throw new TypeError('nodescript spawner: the spawner executable is required');
    this.#bin = bin;
    this.#log = logger;
    // Started now, not at the first request: forking the daemon itself is the one blocking spawn,
    // better paid at startup than in the middle of a boot storm.
    this.#ensure();
    this.#ref(false);
  }

  start(job: SpawnJob, h: JobHandlers): JobHandle {
    if (this.#closed) throw new Error('nodescript spawner is closed');
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    const child = this.#ensure();
    this.#jobs.set(id, h);
    if (this.#jobs.size === 1) this.#ref(true);
    const fields = [job.path, job.cwd, ...Object.entries(job.env).map(([k, v]) => `${k}=${v}`)];
    this.#send(encodeFrame('R', id, Buffer.from(fields.join('\0'))));
    return {
      kill: (signal) => {
        if (this.#jobs.has(id) && this.#child === child) this.#send(encodeFrame('K', id, Buffer.from(signal.slice(3))));
      },
    };
  }

  /** Frames queued in one turn of the event loop go out in one write (a storm starts many jobs per turn). */
  #send(f: Buffer): void {
    this.#queue.push(f);
    if (this.#queue.length === 1) setImmediate(() => this.#flush());
  }

  #flush(): void {
    const frames = this.#queue;
    this.#queue = [];
    const child = this.#child;
    if (child && frames.length > 0) child.stdin.write(frames.length === 1 ? frames[0] : Buffer.concat(frames));
  }

  #ensure(): ChildProcessByStdio<Writable, Readable, Readable> {
    if (this.#child) return this.#child;
    const child = spawn(this.#bin, [], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' } });
    this.#child = child;
    this.#frames.reset();
    child.stdin.on('error', () => {}); // EPIPE when it died: reported by 'exit'
    child.stdout.on('data', (b: Buffer) => this.#onData(b));
    child.stderr.on('data', (b: Buffer) => this.#log.warn({ spawner: this.#bin }, `nodescript spawner: ${b.toString().trim()}`));
    const gone = (why: string) => {
      if (this.#child !== child) return;
      this.#child = undefined;
      const jobs = [...this.#jobs.values()];
      this.#jobs.clear();
      if (!this.#closed) this.#log.error({ spawner: this.#bin }, `nodescript spawner ${why}`);
      for (const h of jobs) h.exit({ code: null, signal: null, error: `nodescript spawner ${why}` });
    };
    child.on('error', (err) => gone(`failed: ${err.message}`));
    child.on('exit', (code, signal) => gone(`exited (${signal ?? code})`));
    return child;
  }

  #ref(on: boolean): void {
    const c = this.#child;
    if (!c) return;
    const m = on ? 'ref' : 'unref';
    c[m]();
    (c.stdin as unknown as { [k: string]: () => void })[m]?.();
    (c.stdout as unknown as { [k: string]: () => void })[m]?.();
    (c.stderr as unknown as { [k: string]: () => void })[m]?.();
  }

  #onData(b: Buffer): void {
    // Copy: a payload outlives this chunk (it is queued in a render stream).
    this.#frames.push(b, (type, id, payload) => this.#dispatch(type, id, Buffer.from(payload)));
  }

  #dispatch(type: string, id: number, payload: Buffer): void {
    const h = this.#jobs.get(id);
    if (!h) return;
    if (type === 'O') h.stdout(payload);
    else if (type === 'E') h.stderr(payload);
    else if (type === 'X' || type === 'F') {
      this.#jobs.delete(id);
      if (this.#jobs.size === 0) this.#ref(false);
      if (type === 'F') h.exit({ code: null, signal: null, error: payload.toString() });
      else {
        const [code, signo] = payload.toString().split(' ').map(Number);
        h.exit(signo > 0 ? { code: null, signal: SIGNAL_NAMES.get(signo) ?? `signal ${signo}` } : { code, signal: null });
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.#ref(true);
    child.stdin.end(); // the spawner TERMs what still runs, KILLs it 3 s later, then exits
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}
