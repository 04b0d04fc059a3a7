/**
 * VNFS images across servers sharing a database (issue 19). Each server serves its own statedir;
 * when a VNFS image is rebuilt (or imported) on one server, it publishes the new sha256 in the
 * database, and the others learn it (notification, else within a poll) and fetch it from a live
 * server that has it (the builder first), checksum verified, before serving it. Until a server has
 * the current image, `ready()` holds a node's request for it (at most `waitMs`) rather than hand
 * out the stale one, and refuses it with the reason when no server could supply it.
 *
 * Which image is current is the database's: the last publish wins. A local image that differs
 * from it is published when it is a build this server made since (a sha256 it never held, written
 * after the current one was published); otherwise it is stale and replaced by a fetch.
 */
import type { Logger } from '../log/logger.js';
import type { RegistryStore, VnfsImageRecord } from '../registry/types.js';
import { ProvisiondError, errorMessage } from '../util/errors.js';
import { capsuleDir, listVnfsNames, readLocalImage, type LocalImage } from '../vnfs/index.js';
import { fetchCurrentImage } from './image-fetch.js';

/** A node asked for an image this server does not have yet and could not get in time. */
export class ImageUnavailableError extends ProvisiondError {}

export interface ImageSyncOptions {
  registry: RegistryStore;
  statedir: string;
  /** This server's address as its peers reach it (`HOST:PORT` of its HTTP service). */
  self: () => string;
  log: Logger;
  /** Told after an image fetched was put in place (the capsule folder). */
  installed?: (dir: string) => void;
  /** Told of each publish and fetch (the daemon's Prometheus counters). */
  observe?: { published(): void; fetched(bytes: number): void; failed(): void };
  /** How often the database is read besides the notifications (default 5 s). */
  pollMs?: number;
  /** How long a node's request waits for an image being fetched (default 60 s). */
  waitMs?: number;
}

interface Fetching {
  record: VnfsImageRecord;
  abort: AbortController;
  waiters: Set<{ resolve(): void; reject(err: Error): void }>;
  lastError: string | null;
}

export interface ImageSyncCounters {
  published: number;
  fetched: number;
  fetchedBytes: number;
  fetchFailures: number;
}

const MAX_BACKOFF_MS = 30_000;
/** How long a node's request waits for the database to say which image is current. */
const FRESH_WAIT_MS = 2_000;

export class ImageSync {
  readonly counters: ImageSyncCounters = { published: 0, fetched: 0, fetchedBytes: 0, fetchFailures: 0 };
  readonly #current = new Map<string, VnfsImageRecord>();
  /** The sha256 this server holds of each VNFS: published, fetched, or found equal to the current. */
  readonly #held = new Map<string, string>();
  readonly #fetches = new Map<string, Fetching>();
  /** Decisions about one VNFS are made one at a time. */
  readonly #chains = new Map<string, Promise<unknown>>();
  #secret: string | null = null;
  #poll: NodeJS.Timeout | null = null;
  #unsubscribe: () => void = () => {};
  #closed = false;

  constructor(private readonly o: ImageSyncOptions) {}

  /** Reads what the database has, reconciles every VNFS, then follows notifications and polls. */
  async start(): Promise<void> {
    const self = this.o.self();
    for (const rec of await this.o.registry.listImages()) {
      this.#current.set(rec.vnfs, rec);
      const mine = (await this.o.registry.imageHolders(rec.vnfs)).find((h) => h.server === self);
      if (mine) this.#held.set(rec.vnfs, mine.sha256);
    }
    // null: listening (again), and what was published before may not have been told: all read again.
    this.#unsubscribe = this.o.registry.onImagePublished?.((vnfs) => void (vnfs === null ? this.reconcileAll() : this.refresh(vnfs))) ?? (() => {});
    await this.reconcileAll();
    const tick = (): void => {
      this.#poll = setTimeout(() => void this.reconcileAll().finally(() => !this.#closed && tick()), this.o.pollMs ?? 5_000);
      this.#poll.unref();
    };
    tick();
  }

  /** What an admin wants to see: the images this server is still fetching, and why not yet. */
  status(): Array<{ vnfs: string; sha256: string; builder: string; lastError: string | null }> {
    return [...this.#fetches.values()].map((f) => ({ vnfs: f.record.vnfs, sha256: f.record.sha256, builder: f.record.builder, lastError: f.lastError }));
  }

  /** The database's current image of `vnfs` was (maybe) published anew. */
  async refresh(vnfs: string): Promise<void> {
    try {
      const rec = await this.o.registry.getImage(vnfs);
      if (rec) this.#current.set(vnfs, rec);
      else if (this.#current.has(vnfs)) this.#forgotten(vnfs);
      await this.reconcile(vnfs);
    } catch (err) {
      this.o.log.warn({ vnfs, err: errorMessage(err) }, `vnfs ${vnfs}: reading its published image failed: ${errorMessage(err)}`);
    }
  }

  async reconcileAll(): Promise<void> {
    if (this.#closed) return;
    try {
      const listed = await this.o.registry.listImages();
      const seen = new Set(listed.map((r) => r.vnfs));
      for (const vnfs of this.#current.keys()) if (!seen.has(vnfs)) this.#forgotten(vnfs);
      for (const rec of listed) this.#current.set(rec.vnfs, rec);
      const names = new Set([...(await listVnfsNames(this.o.statedir)), ...this.#current.keys()]);
      for (const vnfs of names) await this.reconcile(vnfs);
    } catch (err) {
      this.o.log.warn({ err: errorMessage(err) }, `vnfs images: reconciling with the database failed: ${errorMessage(err)}`);
    }
  }

  /** Publishes, agrees or fetches, as the local image and the database's current one say. */
  reconcile(vnfs: string): Promise<void> {
    return this.#serial(vnfs, async () => {
      if (this.#closed) return;
      const local = await readLocalImage(this.o.statedir, vnfs).catch(() => null);
      const rec = this.#current.get(vnfs);
      if (!rec) {
        // Deleted on another server: this copy is not published again unless it is built anew here.
        const deleted = this.#deleted.get(vnfs);
        if (local && (deleted === undefined || local.mtimeMs > deleted)) await this.#publish(vnfs, local);
        return;
      }
      if (local?.sha256 === rec.sha256) return this.#agree(vnfs, rec.sha256);
      if (local && this.#held.get(vnfs) !== local.sha256 && local.mtimeMs > rec.builtAt) return void (await this.#publish(vnfs, local));
      this.#fetch(rec);
    });
  }

  /**
   * A build of this server finished (the vnfs-image task, a rebuild on request): publishes it unless
   * it is the current image already; resolves once the database committed it. The message says what.
   */
  publishLocal(vnfs: string): Promise<string> {
    return this.#serial(vnfs, async () => {
      const local = await readLocalImage(this.o.statedir, vnfs);
      if (!local) throw new ProvisiondError(`publishing vnfs ${vnfs}: it has no image`);
      if (this.#current.get(vnfs)?.sha256 === local.sha256) {
        await this.#agree(vnfs, local.sha256);
        return `image sha256 ${local.sha256} is the current one of the servers already`;
      }
      const rec = await this.#publish(vnfs, local);
      return `published to the servers of the database as the current image (sha256 ${rec.sha256})`;
    });
  }

  /**
   * Resolves once this server has the current image of `vnfs` (at once when it has), after a fetch
   * in flight; ImageUnavailableError when none can be had within `waitMs` or no server supplies it.
   */
  async ready(vnfs: string): Promise<void> {
    // The database is asked (one query shared by the requests in flight): once a publish is
    // acknowledged, no server hands out the image it replaced, notification or not.
    await this.#fresh(vnfs);
    if (!this.#current.has(vnfs)) return;
    const local = await readLocalImage(this.o.statedir, vnfs).catch(() => null);
    if (local?.sha256 === this.#current.get(vnfs)?.sha256) return;
    if (!this.#fetches.has(vnfs)) {
      try {
        await this.reconcile(vnfs);
      } catch (err) {
        // A local build that could not be published (the database out of reach): served as it is.
        this.o.log.warn({ vnfs, err: errorMessage(err) }, `vnfs ${vnfs}: ${errorMessage(err)}`);
      }
    }
    // No fetch: this server has the current image now, or its own build is newer.
    const f = this.#fetches.get(vnfs);
    if (!f) return;
    const ms = this.o.waitMs ?? 60_000;
    const rec = f.record;
    await new Promise<void>((resolve, reject) => {
      const w = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        f.waiters.delete(w);
        reject(new ImageUnavailableError(`vnfs ${vnfs}: this server is still fetching image ${rec.sha256.slice(0, 12)} (built by ${rec.builder}) after ${ms / 1000} s${f.lastError ? `: ${f.lastError}` : ''}`));
      }, ms);
      f.waiters.add(w);
    });
  }

  /** VNFS whose image the database forgot while this server ran (deleted elsewhere), and when. */
  readonly #deleted = new Map<string, number>();

  /** The database no longer has an image of `vnfs`: no fetch of it goes on, and its waiters are let go. */
  #forgotten(vnfs: string): void {
    this.#current.delete(vnfs);
    this.#held.delete(vnfs);
    this.#deleted.set(vnfs, Date.now());
    const f = this.#fetches.get(vnfs);
    if (!f) return;
    this.#fetches.delete(vnfs);
    f.abort.abort(new Error('the vnfs was deleted'));
    for (const w of f.waiters) w.reject(new ImageUnavailableError(`vnfs ${vnfs} was deleted on another server while this one fetched its image`));
    this.o.log.info({ vnfs }, `vnfs ${vnfs}: its image was forgotten (deleted on another server): not fetched`);
  }

  readonly #reading = new Map<string, Promise<void>>();

  /**
   * The current record of `vnfs` from the database; on failure, or when it takes more than
   * FRESH_WAIT_MS (a database out of reach), the one known stays in force.
   */
  #fresh(vnfs: string): Promise<void> {
    let p = this.#reading.get(vnfs);
    if (!p) {
      p = this.o.registry
        .getImage(vnfs)
        .then((rec) => {
          const known = this.#current.get(vnfs);
          if (!rec && known) this.#forgotten(vnfs);
          if (rec && rec.sha256 !== known?.sha256) {
            this.#current.set(vnfs, rec);
            return this.reconcile(vnfs);
          }
        })
        .catch(() => {})
        .finally(() => this.#reading.delete(vnfs));
      this.#reading.set(vnfs, p);
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, FRESH_WAIT_MS)));
    return Promise.race([p, late]).finally(() => clearTimeout(timer));
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#poll) clearTimeout(this.#poll);
    this.#unsubscribe();
    for (const f of this.#fetches.values()) {
      f.abort.abort(new Error('the daemon is stopping'));
      for (const w of f.waiters) w.reject(new ImageUnavailableError('the server is stopping'));
    }
    await Promise.allSettled([...this.#chains.values()]);
  }

  #serial<T>(vnfs: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.#chains.get(vnfs) ?? Promise.resolve()).catch(() => {}).then(fn);
    const tail = run.catch(() => {});
    this.#chains.set(vnfs, tail);
    void tail.then(() => this.#chains.get(vnfs) === tail && this.#chains.delete(vnfs));
    return run;
  }

  async #publish(vnfs: string, local: LocalImage): Promise<VnfsImageRecord> {
    const rec = await this.o.registry.publishImage({ vnfs, sha256: local.sha256, bytes: local.bytes, builder: this.o.self(), skeletonSha256: local.skeletonSha256, config: local.config });
    this.#current.set(vnfs, rec);
    this.#held.set(vnfs, rec.sha256);
    this.#deleted.delete(vnfs);
    this.counters.published++;
    this.o.observe?.published();
    const f = this.#fetches.get(vnfs);
    if (f) {
      // This server has the current image now (its own): whoever waited for the fetch gets it.
      this.#fetches.delete(vnfs);
      f.abort.abort(new Error('superseded by an image built here'));
      for (const w of f.waiters) w.resolve();
    }
    this.o.log.info({ vnfs, sha256: rec.sha256, bytes: rec.bytes }, `vnfs ${vnfs}: image ${rec.sha256.slice(0, 12)} published as the current one of the servers`);
    return rec;
  }

  async #agree(vnfs: string, sha256: string): Promise<void> {
    if (this.#held.get(vnfs) === sha256) return;
    await this.o.registry.holdImage(vnfs, sha256, this.o.self());
    this.#held.set(vnfs, sha256);
  }

  /** Starts (or keeps) the fetch of `rec`; one per VNFS, a newer record replaces an older one. */
  #fetch(rec: VnfsImageRecord): void {
    const running = this.#fetches.get(rec.vnfs);
    if (running?.record.sha256 === rec.sha256) return;
    const f: Fetching = { record: rec, abort: new AbortController(), waiters: running?.waiters ?? new Set(), lastError: null };
    running?.abort.abort(new Error('superseded by a newer publish'));
    this.#fetches.set(rec.vnfs, f);
    void this.#fetchLoop(f);
  }

  async #fetchLoop(f: Fetching): Promise<void> {
    const { vnfs, sha256 } = f.record;
    for (let attempt = 0; !f.abort.signal.aborted; attempt++) {
      try {
        await this.#fetchOnce(f);
        if (f.abort.signal.aborted) break;
        if (this.#fetches.get(vnfs) === f) this.#fetches.delete(vnfs);
        for (const w of f.waiters) w.resolve();
        return;
      } catch (err) {
        if (f.abort.signal.aborted) break;
        f.lastError = errorMessage(err);
        this.counters.fetchFailures++;
        this.o.observe?.failed();
        const wait = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** attempt);
        this.o.log.warn({ vnfs, sha256, err: f.lastError, retryMs: wait }, `vnfs ${vnfs}: image ${sha256.slice(0, 12)} could not be fetched: ${f.lastError}; retrying in ${wait / 1000} s`);
        for (const w of f.waiters) w.reject(new ImageUnavailableError(`vnfs ${vnfs}: the current image ${sha256.slice(0, 12)} (built by ${f.record.builder}) is not on this server and could not be fetched: ${f.lastError}`));
        f.waiters.clear();
        await new Promise<void>((r) => {
          const timer = setTimeout(r, wait);
          f.abort.signal.addEventListener('abort', () => (clearTimeout(timer), r()), { once: true });
        });
      }
    }
    // Superseded: a newer fetch took the waiters over; stopped: close() refused them.
  }

  async #fetchOnce(f: Fetching): Promise<void> {
    const rec = f.record;
    this.#secret ??= await this.o.registry.clusterSecret();
    const got = await fetchCurrentImage({ registry: this.o.registry, statedir: this.o.statedir, self: this.o.self(), secret: this.#secret, record: rec, signal: f.abort.signal, serialize: (install) => this.#serial(rec.vnfs, install) });
    if (!got) return;
    this.o.installed?.(capsuleDir(this.o.statedir, rec.vnfs));
    await this.o.registry.holdImage(rec.vnfs, rec.sha256, this.o.self()).then(
      () => this.#held.set(rec.vnfs, rec.sha256),
      (err: unknown) => this.o.log.warn({ vnfs: rec.vnfs, err: errorMessage(err) }, 'recording this server as a holder failed: recorded at the next reconcile'),
    );
    this.counters.fetched++;
    this.counters.fetchedBytes += got.bytes;
    this.o.observe?.fetched(got.bytes);
    this.o.log.info(
      { vnfs: rec.vnfs, sha256: rec.sha256, from: got.server, bytes: got.bytes, seconds: Number(got.seconds.toFixed(3)) },
      `vnfs image fetched from ${got.server}: ${got.bytes} bytes in ${got.seconds.toFixed(2)} s (vnfs ${rec.vnfs}, sha256 ${rec.sha256.slice(0, 12)})`,
    );
  }
}
