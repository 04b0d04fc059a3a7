/**
 * A minimal QMP client (QEMU Machine Protocol, JSON lines over a unix socket): greeting,
 * `qmp_capabilities`, then commands matched to their answers by `id`; asynchronous events are
 * skipped. One connection per call: QMP sockets accept one client at a time by default, and
 * holding it would lock out the admin's own tools.
 */
import { connect, type Socket } from 'node:net';
import { PowerError } from '../types.js';

export class QmpClient {
  readonly #socket: Socket;
  readonly #path: string;
  #buf = '';
  #nextId = 1;
  readonly #pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #greeted!: Promise<void>;
  #closed: Error | null = null;

  private constructor(path: string, socket: Socket) {
    this.#path = path;
    this.#socket = socket;
  }

  /** Connects, reads the greeting and enters command mode. */
  static async open(path: string, signal?: AbortSignal): Promise<QmpClient> {
    const socket = connect({ path });
    const c = new QmpClient(path, socket);
    c.#greeted = new Promise((resolve, reject) => {
      const onAbort = () => {
        socket.destroy();
        reject(new PowerError(`qmp ${path}: ${signal?.reason instanceof Error && signal.reason.name === 'TimeoutError' ? 'timed out' : 'cancelled'}`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('error', (e: NodeJS.ErrnoException) => reject(new PowerError(`qmp ${path}: ${e.code ?? e.message}`, { cause: e })));
      c.#pending.set('greeting', { resolve: () => resolve(), reject });
    });
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => c.#onData(d));
    socket.on('error', (e) => c.#fail(new PowerError(`qmp ${path}: ${e.message}`, { cause: e })));
    socket.on('close', () => c.#fail(new PowerError(`qmp ${path}: connection closed`)));
    await c.#greeted;
    await c.execute('qmp_capabilities');
    return c;
  }

  #onData(d: string): void {
    this.#buf += d;
    let nl: number;
    while ((nl = this.#buf.indexOf('\n')) >= 0) {
      const line = this.#buf.slice(0, nl).trim();
      this.#buf = this.#buf.slice(nl + 1);
      if (!line) continue;
      let msg: { QMP?: unknown; id?: string; return?: unknown; error?: { class: string; desc: string }; event?: string };
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      if (msg.QMP) {
        const p = this.#pending.get('greeting');
        this.#pending.delete('greeting');
        p?.resolve(undefined);
      } else if (msg.id !== undefined) {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.error) p?.reject(new PowerError(`qmp ${this.#path}: ${msg.error.desc}`));
        else p?.resolve(msg.return);
      }
    }
  }

  #fail(err: Error): void {
    this.#closed ??= err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  /** Runs one command and resolves with its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = String(this.#nextId++);
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`);
    });
  }

  close(): void {
    this.#closed ??= new PowerError(`qmp ${this.#path}: closed`);
    this.#socket.end();
    this.#socket.destroy();
  }
}
