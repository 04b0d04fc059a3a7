/**
 * A Server-Sent Events client on node's fetch, for the tests and bench/api: it reads the stream as
 * a browser's EventSource does (fields `id`, `event`, `data`, comments ignored), keeps every event,
 * and lets a test wait for the ones it expects.
 */
export interface SseEvent {
  id: string | null;
  event: string;
  data: string;
}

export class SseClient {
  readonly events: SseEvent[] = [];
  /** Comment lines (`: ...`), e.g. the daemon's run banner and keep-alives. */
  readonly comments: string[] = [];
  #waiters = new Set<() => void>();
  #abort = new AbortController();
  #ended = false;
  /** Resolves when the stream ends (closed by either side). */
  readonly done: Promise<void>;

  private constructor(readonly res: Response) {
    this.done = this.#read().finally(() => {
      this.#ended = true;
      this.#wake();
    });
  }

  /** Opens `url` (the events operation) with a token and, to resume, a Last-Event-ID. */
  static async open(url: string, o: { token?: string | null; lastEventId?: string } = {}): Promise<SseClient> {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    if (o.lastEventId) headers['last-event-id'] = o.lastEventId;
    const abort = new AbortController();
    const res = await fetch(url, { headers, signal: abort.signal });
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
    const c = new SseClient(res);
    c.#abort = abort;
    return c;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** The parsed JSON data of the events of type `event` (all types: undefined). */
  data<T = Record<string, unknown>>(event?: string): T[] {
    return this.events.filter((e) => event === undefined || e.event === event).map((e) => JSON.parse(e.data) as T);
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of this.res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          this.#block(buf.slice(0, cut));
          buf = buf.slice(cut + 2);
        }
        this.#wake();
      }
    } catch {
      // Aborted by close(), or the daemon went away: the stream has ended either way.
    }
  }

  #block(block: string): void {
    let id: string | null = null;
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        this.comments.push(line.slice(1).trim());
        continue;
      }
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length > 0) this.events.push({ id, event, data: data.join('\n') });
  }

  #wake(): void {
    for (const w of this.#waiters) w();
  }

  /** Resolves once `pred` holds over the events received (checked as they arrive); rejects after `ms`. */
  async until(pred: (events: SseEvent[]) => boolean, ms = 10_000, what = 'events'): Promise<SseEvent[]> {
    if (pred(this.events)) return this.events;
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pred(this.events)) {
          clearTimeout(timer);
          this.#waiters.delete(check);
          resolve(this.events);
        } else if (this.#ended) {
          clearTimeout(timer);
          this.#waiters.delete(check);
          reject(new Error(`the stream ended before ${what} (${this.events.length} events)`));
        }
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`no ${what} within ${ms} ms (${this.events.length} events: ${this.events.slice(-5).map((e) => `${e.event} ${e.data.slice(0, 80)}`).join(' | ')})`));
      }, ms);
      this.#waiters.add(check);
    });
  }

  /** Waits for `n` events in all. */
  count(n: number, ms = 10_000): Promise<SseEvent[]> {
    return this.until((e) => e.length >= n, ms, `${n} events`);
  }

  close(): void {
    this.#abort.abort();
  }
}
