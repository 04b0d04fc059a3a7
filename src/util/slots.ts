/**
 * A bounded number of slots handed out first come, first served within a priority (0 first): what
 * admission control paces a boot storm with (`http.maxTransfers`; a node's image before another's
 * stage-1, so that nodes further along finish first). A holder gets a `release` function (safe to
 * call twice); a waiter whose signal aborts (its client went away) leaves the queue. Limit 0: no
 * limit, nobody waits.
 */

interface Waiter {
  grant: () => void;
  gone: boolean;
}

export interface Slot {
  /** Frees the slot (a second call does nothing). */
  release(): void;
  /** Whether the holder had to wait in the queue, and for how long (ms). */
  queued: boolean;
  waitedMs: number;
}

export class Slots {
  #active = 0;
  /** One first-in-first-out queue per priority; `#heads[p]` is the next waiter of `#queues[p]`. */
  #queues: Waiter[][] = [[], []];
  #heads = [0, 0];

  constructor(public limit: number) {
    if (!Number.isInteger(limit) || limit < 0) throw new TypeError(`a slot limit is a whole number >= 0, got ${limit}`);
  }

  /** Slots held now. */
  get active(): number {
    return this.#active;
  }

  /** Waiters in the queue now. */
  get waiting(): number {
    let n = 0;
    this.#queues.forEach((q, p) => {
      for (let i = this.#heads[p]!; i < q.length; i++) if (!q[i]!.gone) n++;
    });
    return n;
  }

  /**
   * A slot, at once when one is free and nobody waits, else in arrival order after every waiter of a
   * higher priority (0 before 1); rejects when `signal` aborts first.
   */
  acquire(signal?: AbortSignal, priority: 0 | 1 = 0): Promise<Slot> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const began = performance.now();
    if (this.limit === 0 || (this.#active < this.limit && this.#queues.every((q, p) => this.#heads[p] === q.length))) {
      this.#active++;
      return Promise.resolve(this.#slot(false, 0));
    }
    return new Promise<Slot>((resolve, reject) => {
      const waiter: Waiter = {
        gone: false,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.#slot(true, performance.now() - began));
        },
      };
      const onAbort = () => {
        waiter.gone = true;
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queues[priority]!.push(waiter);
    });
  }

  /** A new limit (a reload): more slots serve waiters at once; fewer take effect as holders leave. */
  resize(limit: number): void {
    if (!Number.isInteger(limit) || limit < 0) throw new TypeError(`a slot limit is a whole number >= 0, got ${limit}`);
    this.limit = limit;
    this.#drain();
  }

  #slot(queued: boolean, waitedMs: number): Slot {
    let held = true;
    return {
      queued,
      waitedMs,
      release: () => {
        if (!held) return;
        held = false;
        this.#active--;
        this.#drain();
      },
    };
  }

  #drain(): void {
    for (let p = 0; p < this.#queues.length; p++) {
      let q = this.#queues[p]!;
      while (this.#heads[p]! < q.length && (this.limit === 0 || this.#active < this.limit)) {
        const w = q[this.#heads[p]!++]!;
        if (w.gone) continue;
        this.#active++;
        w.grant();
      }
      // Compact now and then: a queue is not shifted for each grant.
      if (this.#heads[p]! > 1024 && this.#heads[p]! * 2 > q.length) {
        q = q.slice(this.#heads[p]);
        this.#queues[p] = q;
        this.#heads[p] = 0;
      }
    }
  }
}
