/**
 * The live event stream's hub: node state changes, timeline steps and task progress, numbered in
 * the order they happened. Subscribers (`GET /api/v1/events`) get every event after the one they
 * last saw: a reconnecting client sends `Last-Event-ID` and misses nothing that is still in the
 * buffer; a client too far behind (or from before a daemon restart) is told so with a `gap` event,
 * so that it re-reads the state instead of believing it saw everything.
 */
import { randomBytes } from 'node:crypto';

export type EventKind = 'node' | 'timeline' | 'task';
export const EVENT_KINDS: readonly EventKind[] = ['node', 'timeline', 'task'];

export interface HubEvent {
  /** `RUN-SEQ`: RUN changes when the daemon restarts. */
  id: string;
  seq: number;
  kind: EventKind;
  /** The node it is about (name, or its hardware address when it has no name yet); null for a task. */
  node: string | null;
  time: number;
  data: Record<string, unknown>;
}

export type Listener = (e: HubEvent) => void;

export interface EventHubOptions {
  /** Events kept for resuming subscribers (default 100,000: a 1,000-node storm's whole boot). */
  capacity?: number;
}

export class EventHub {
  readonly run = randomBytes(4).toString('hex');
  #capacity: number;
  #ring: HubEvent[] = [];
  #start = 0;
  #seq = 0;
  #listeners = new Set<Listener>();

  constructor({ capacity = 100_000 }: EventHubOptions = {}) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new TypeError(`event hub capacity must be a positive integer, not ${capacity}`);
    this.#capacity = capacity;
  }

  get lastSeq(): number {
    return this.#seq;
  }

  publish(kind: EventKind, node: string | null, data: Record<string, unknown>, time = Date.now()): HubEvent {
    const seq = ++this.#seq;
    const e: HubEvent = { id: `${this.run}-${seq}`, seq, kind, node, time, data };
    if (this.#ring.length < this.#capacity) this.#ring.push(e);
    else {
      this.#ring[this.#start] = e;
      this.#start = (this.#start + 1) % this.#capacity;
    }
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch {
        // A subscriber's failure is its own.
      }
    }
    return e;
  }

  /**
   * Events after `lastId` still in the buffer, and whether some were lost (`gap`: the id is from
   * another daemon run, or older than the buffer). No `lastId`: nothing (a new subscriber starts now).
   */
  since(lastId: string | undefined): { events: HubEvent[]; gap: boolean } {
    if (lastId === undefined || lastId === '') return { events: [], gap: false };
    const [run, seqText] = lastId.split('-');
    const seq = Number(seqText);
    if (run !== this.run || !Number.isInteger(seq) || seq > this.#seq) return { events: this.#ordered(), gap: true };
    const ordered = this.#ordered();
    const oldest = ordered[0]?.seq ?? this.#seq + 1;
    return { events: ordered.filter((e) => e.seq > seq), gap: seq + 1 < oldest };
  }

  /** The newest events still in the buffer that `keep` accepts, newest first, at most `limit`. */
  recent(keep: (e: HubEvent) => boolean, limit: number): HubEvent[] {
    const out: HubEvent[] = [];
    const n = this.#ring.length;
    for (let i = 0; i < n && out.length < limit; i++) {
      // Newest first: the slot before #start (when full), else the end of the array.
      const e = this.#ring[(this.#start - 1 - i + 2 * n) % n]!;
      if (keep(e)) out.push(e);
    }
    return out;
  }

  subscribe(l: Listener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  get subscribers(): number {
    return this.#listeners.size;
  }

  #ordered(): HubEvent[] {
    return this.#start === 0 ? this.#ring.slice() : [...this.#ring.slice(this.#start), ...this.#ring.slice(0, this.#start)];
  }
}
