/**
 * The global bound on script processes running at once. Waiters are served first come, first
 * served by *request*: each render takes a ticket when it starts, and a slot freed goes to the
 * waiting script of the oldest request. So a boot storm finishes node after node in arrival order,
 * instead of every node waiting for the whole storm.
 */

interface Waiter {
  ticket: number;
  seq: number;
  resolve: () => void;
}

export class ProcessLimiter {
  #active = 0;
  #tickets = 0;
  #seq = 0;
  /** Binary min-heap on (ticket, seq). */
  #heap: Waiter[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new TypeError(`nodescript concurrency must be a positive integer, got ${limit}`);
  }

  /** Processes holding a slot now. */
  get active(): number {
    return this.#active;
  }

  /** Scripts waiting for a slot. */
  get waiting(): number {
    return this.#heap.length;
  }

  /** A ticket for a new request: lower tickets are served first. */
  ticket(): number {
    return this.#tickets++;
  }

  /** Waits for a slot; call `release()` exactly once afterwards. Removing a waiter on abort is done by `signal`. */
  acquire(ticket: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#active < this.limit && this.#heap.length === 0) {
      this.#active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { ticket, seq: this.#seq++, resolve };
      const onAbort = () => {
        const i = this.#heap.indexOf(waiter);
        if (i >= 0) {
          this.#removeAt(i);
          reject(signal!.reason);
        }
      };
      waiter.resolve = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#push(waiter);
    });
  }

  release(): void {
    const next = this.#pop();
    if (next) next.resolve(); // the slot passes straight to the next waiter
    else this.#active--;
  }

  #less(a: Waiter, b: Waiter): boolean {
    return a.ticket < b.ticket || (a.ticket === b.ticket && a.seq < b.seq);
  }

  #push(w: Waiter): void {
    const h = this.#heap;
    h.push(w);
    this.#up(h.length - 1);
  }

  #pop(): Waiter | undefined {
    const h = this.#heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    this.#removeAt(0);
    return top;
  }

  #removeAt(i: number): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (i === h.length) return;
    h[i] = last;
    this.#down(i);
    this.#up(i);
  }

  #up(i: number): void {
    const h = this.#heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  #down(i: number): void {
    const h = this.#heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.#less(h[l], h[m])) m = l;
      if (r < h.length && this.#less(h[r], h[m])) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }
}
