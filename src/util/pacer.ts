/**
 * Cooperative pacing of long work that shares the event loop with the network servers.
 *
 * The admin API can be asked for pages of 5,000 nodes by many clients at once. Yielding with a bare
 * setImmediate after every N items is not enough: every yielded request resumes in the same check
 * phase, so eight clients still hold the loop for eight chunks in a row, and libuv reads at most 32
 * datagrams per socket per turn, so DHCP falls behind and clients time out. A Pacer makes all its
 * users share ONE slice of `sliceMs` per turn of the event loop: work calls `pace()` between items;
 * inside the current slice it goes on at once, otherwise it queues and is let go one caller per turn,
 * after the loop has polled its sockets. Alone, the paced work still gets nearly the whole loop (the
 * poll costs microseconds); beside a busy DHCP server it gets what DHCP leaves.
 */
export class Pacer {
  readonly #sliceMs: number;
  #sliceStart = Number.NEGATIVE_INFINITY;
  readonly #waiters: Array<() => void> = [];
  #scheduled = false;
  /** Turns given, for tests and metrics. */
  turns = 0;

  /** `sliceMs`: how long paced work may run in one turn of the event loop. */
  constructor(sliceMs = 2) {
    if (!(sliceMs > 0)) throw new RangeError(`Pacer: sliceMs must be > 0 (got ${sliceMs})`);
    this.#sliceMs = sliceMs;
  }

  /** Resolves at once while the slice in progress has time left; otherwise on a later turn of the loop. */
  pace(): Promise<void> {
    if (performance.now() - this.#sliceStart < this.#sliceMs) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#waiters.push(resolve);
      this.#schedule();
    });
  }

  /** Waiting callers. */
  get waiting(): number {
    return this.#waiters.length;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // An immediate queued now runs after the next poll phase: the sockets are read between two turns.
    setImmediate(() => this.#turn());
  }

  #turn(): void {
    this.#scheduled = false;
    const next = this.#waiters.shift();
    if (!next) return;
    this.turns++;
    this.#sliceStart = performance.now();
    next();
    if (this.#waiters.length > 0) this.#schedule();
  }
}
