/**
 * Shared serial consoles for the web UI: ONE console session per node (ipmi SOL, QEMU serial, the
 * exec driver's program: what `provisiond console` opens, logged to the node's console log),
 * however many viewers watch. Every viewer gets the same bytes; a viewer joining (or reconnecting)
 * first gets the scrollback: the tail of the console log as it was when the session opened, then
 * everything the session printed since. Only viewers allowed to type reach the node's input. When
 * the last viewer leaves, the session stays open for a grace period (a page reload keeps it), then
 * closes, so the BMC's only SOL session is free again.
 *
 * The terminal size the node sees is that of the operator who last resized or typed (tmux's
 * `window-size latest`): one far end has one size, and the person typing is the one whose screen
 * the output must fit. Viewers who only watch never change it. A console without a window size (a
 * serial line) keeps none.
 */
import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import type { Logger } from '../log/logger.js';
import { consoleLogPath, openLoggedConsole } from '../power/console.js';
import type { ConsoleSession, PowerDriver } from '../power/types.js';
import { errorMessage } from '../util/errors.js';

/** One browser (or other client) watching a console. */
export interface ConsoleViewer {
  /** Who, for the log and the banner. */
  readonly who: string;
  readonly canType: boolean;
  output(data: Buffer): void;
  /** A control message (JSON for the client). */
  control(msg: Record<string, unknown>): void;
  /** The hub ends the viewer (the session ended). */
  end(reason: string): void;
}

export interface ConsoleHubOptions {
  /** How long a session outlives its last viewer (default 10 s); a function follows config reloads. */
  graceMs?: number | (() => number);
  /** Scrollback kept and sent to a joiner (default 256 KiB). */
  scrollbackBytes?: number;
}

/** A terminal size and who set it. */
export interface ConsoleSize {
  cols: number;
  rows: number;
  by: string;
}

interface Share {
  node: string;
  viewers: Set<ConsoleViewer>;
  /** Each typing viewer's own terminal size, as it last told it. */
  sizes: Map<ConsoleViewer, { cols: number; rows: number }>;
  /** The size the far end has now (null: never set, the console's default). */
  size: ConsoleSize | null;
  session: (ConsoleSession & { logFile: string }) | null;
  opening: Promise<void>;
  history: Buffer[];
  historyBytes: number;
  grace: NodeJS.Timeout | null;
  closed: boolean;
}

/** The last `max` bytes of a file (nothing when it does not exist). */
function tail(file: string, max: number): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, max);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    return buf;
  } finally {
    closeSync(fd);
  }
}

export class ConsoleHub {
  readonly #shares = new Map<string, Share>();
  readonly #graceMs: () => number;
  readonly #scrollback: number;
  #badMessages = 0;

  constructor(
    private readonly log: Logger,
    { graceMs = 10_000, scrollbackBytes = 256 * 1024 }: ConsoleHubOptions = {},
  ) {
    this.#graceMs = typeof graceMs === 'number' ? () => graceMs : graceMs;
    this.#scrollback = scrollbackBytes;
  }

  /** Nodes with an open (or opening) session, and their viewer counts. */
  get sessions(): Map<string, number> {
    return new Map([...this.#shares].map(([k, s]) => [k, s.viewers.size]));
  }

  /**
   * Adds a viewer to the node's console, opening the session if there is none (`driver()` gives the
   * node's power driver; `statedir` holds the log). Resolves once the viewer is attached; a console
   * that cannot open (the BMC refuses) rejects, and the viewer is not attached.
   */
  async join(node: string, driver: () => PowerDriver, statedir: string, viewer: ConsoleViewer): Promise<() => void> {
    let share = this.#shares.get(node);
    if (!share || share.closed) {
      const fresh: Share = { node, viewers: new Set(), sizes: new Map(), size: null, session: null, opening: Promise.resolve(), history: [], historyBytes: 0, grace: null, closed: false };
      // What the log holds from earlier sessions is the start of the scrollback.
      const before = tail(consoleLogPath(statedir, node), this.#scrollback);
      if (before.length) this.#remember(fresh, before);
      fresh.opening = (async () => {
        const session = await openLoggedConsole(driver(), node, statedir, `the web UI (${viewer.who})`);
        fresh.session = session;
        session.stream.on('data', (d: Buffer) => {
          this.#remember(fresh, d);
          for (const v of fresh.viewers) v.output(d);
        });
        const ended = (why: string) => {
          if (fresh.closed) return;
          this.#end(fresh, why);
        };
        session.stream.once('end', () => ended('the console closed at the far end'));
        session.stream.once('error', (e: Error) => ended(`console error: ${e.message}`));
        this.log.info({ node, via: session.via, who: viewer.who }, `console: ${node} opened via ${session.via}`);
      })();
      this.#shares.set(node, fresh);
      share = fresh;
      share.opening.catch((err: unknown) => {
        this.log.warn({ node, err: errorMessage(err) }, `console: ${node} could not be opened: ${errorMessage(err)}`);
        fresh.closed = true;
        if (this.#shares.get(node) === fresh) this.#shares.delete(node);
      });
    }
    await share.opening;
    if (share.closed) throw new Error(`the console of ${node} closed`);
    if (share.grace) {
      clearTimeout(share.grace);
      share.grace = null;
    }
    // Scrollback and attach in one step: nothing printed in between is lost or sent twice.
    const scroll = Buffer.concat(share.history);
    share.viewers.add(viewer);
    const resizable = typeof share.session!.resize === 'function';
    viewer.control({ type: 'attached', node, via: share.session!.via, canType: viewer.canType, viewers: share.viewers.size, scrollback: scroll.length, resizable, size: share.size });
    if (scroll.length) viewer.output(scroll);
    this.#announce(share);
    const s = share;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#leave(s, viewer);
    };
  }

  /** Keystrokes of a viewer: to the node if it may type (its terminal size first, when another set it). */
  input(node: string, viewer: ConsoleViewer, data: Buffer): boolean {
    const share = this.#shares.get(node);
    if (!share || !share.viewers.has(viewer) || !viewer.canType || !share.session) return false;
    const mine = share.sizes.get(viewer);
    if (mine) this.#applySize(share, viewer, mine.cols, mine.rows);
    share.session.stream.write(data);
    return true;
  }

  /**
   * A viewer's terminal size (checked by the caller: whole numbers in range). Applied to the far
   * end when the viewer may type; a watcher's size is ignored. Returns whether the far end took it.
   */
  resize(node: string, viewer: ConsoleViewer, cols: number, rows: number): boolean {
    const share = this.#shares.get(node);
    if (!share || !share.viewers.has(viewer) || !viewer.canType || !share.session) return false;
    share.sizes.set(viewer, { cols, rows });
    return this.#applySize(share, viewer, cols, rows);
  }

  /** A message from a viewer that was refused (malformed, unknown): counted and logged. */
  badMessage(node: string, viewer: ConsoleViewer, reason: string): void {
    this.#badMessages++;
    this.log.debug({ node, who: viewer.who, reason }, `console: ${node}: refused a message from ${viewer.who}: ${reason}`);
  }

  /** Refused client messages since the start. */
  get badMessages(): number {
    return this.#badMessages;
  }

  /** Closes every session now (the daemon stops). */
  async close(): Promise<void> {
    await Promise.all([...this.#shares.values()].map((s) => this.#end(s, 'the daemon is stopping')));
  }

  #applySize(share: Share, viewer: ConsoleViewer, cols: number, rows: number): boolean {
    const session = share.session;
    if (!session?.resize) return false;
    if (share.size && share.size.cols === cols && share.size.rows === rows) return true;
    try {
      session.resize(cols, rows);
    } catch (err) {
      this.log.warn({ node: share.node, err: errorMessage(err) }, `console: ${share.node}: resize to ${cols}x${rows} failed: ${errorMessage(err)}`);
      return false;
    }
    share.size = { cols, rows, by: viewer.who };
    for (const v of share.viewers) v.control({ type: 'size', cols, rows, by: viewer.who });
    return true;
  }

  #remember(share: Share, d: Buffer): void {
    share.history.push(d);
    share.historyBytes += d.length;
    while (share.historyBytes > this.#scrollback && share.history.length > 1) share.historyBytes -= share.history.shift()!.length;
  }

  #announce(share: Share): void {
    for (const v of share.viewers) v.control({ type: 'viewers', viewers: share.viewers.size });
  }

  #leave(share: Share, viewer: ConsoleViewer): void {
    share.viewers.delete(viewer);
    share.sizes.delete(viewer);
    this.#announce(share);
    if (share.viewers.size > 0 || share.closed) return;
    share.grace = setTimeout(() => void this.#end(share, 'no viewer left'), this.#graceMs());
    share.grace.unref();
  }

  async #end(share: Share, why: string): Promise<void> {
    if (share.closed && !share.session) return;
    share.closed = true;
    if (share.grace) clearTimeout(share.grace);
    if (this.#shares.get(share.node) === share) this.#shares.delete(share.node);
    for (const v of share.viewers) v.end(why);
    share.viewers.clear();
    const session = share.session;
    share.session = null;
    if (session) {
      await session.close().catch(() => {});
      this.log.info({ node: share.node, why }, `console: ${share.node} closed (${why})`);
    }
  }
}
