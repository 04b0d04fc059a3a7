/**
 * The VNFS image records of a store only one server uses (SQLite): the same answers as the
 * PostgreSQL tables, kept for the life of the process. One server has no peer to tell or fetch
 * from, so nothing here needs to outlive it: the daemon publishes again what it finds at start.
 */
import { randomBytes } from 'node:crypto';
import type { VnfsImageHolder, VnfsImagePublication, VnfsImageRecord } from './types.js';

const SHA = /^[0-9a-f]{64}$/;

/** A publication checked before it is stored: a clear error rather than a bad row. */
export function checkPublication(p: VnfsImagePublication): void {
  if (!p.vnfs) throw new TypeError('publishing a vnfs image: the vnfs name is empty');
  if (!SHA.test(p.sha256)) throw new TypeError(`publishing vnfs ${p.vnfs}: sha256 ${JSON.stringify(p.sha256)} is not 64 hex digits`);
  if (p.skeletonSha256 !== null && !SHA.test(p.skeletonSha256)) throw new TypeError(`publishing vnfs ${p.vnfs}: skeleton sha256 ${JSON.stringify(p.skeletonSha256)} is not 64 hex digits`);
  if (!Number.isSafeInteger(p.bytes) || p.bytes < 0) throw new TypeError(`publishing vnfs ${p.vnfs}: bytes ${p.bytes} is not a size`);
  if (!p.builder) throw new TypeError(`publishing vnfs ${p.vnfs}: the builder's address is empty`);
}

/** Checks a sha256 given to holdImage. */
export function checkHeldSha(vnfs: string, sha256: string): void {
  if (!SHA.test(sha256)) throw new TypeError(`recording a holder of vnfs ${vnfs}: sha256 ${JSON.stringify(sha256)} is not 64 hex digits`);
}

export class LocalImages {
  readonly #images = new Map<string, VnfsImageRecord>();
  readonly #holders = new Map<string, Map<string, { sha256: string; since: number }>>();
  readonly #fns = new Set<(vnfs: string | null) => void>();
  readonly #secret = randomBytes(32).toString('hex');
  #last = 0;

  /** Strictly increasing, as the database's clock orders publishes. */
  #now(): number {
    this.#last = Math.max(Date.now(), this.#last + 1);
    return this.#last;
  }

  publish(p: VnfsImagePublication): VnfsImageRecord {
    checkPublication(p);
    const rec: VnfsImageRecord = { ...p, builtAt: this.#now() };
    this.#images.set(p.vnfs, rec);
    this.hold(p.vnfs, p.sha256, p.builder);
    for (const fn of this.#fns) fn(p.vnfs);
    return { ...rec };
  }

  get(vnfs: string): VnfsImageRecord | null {
    const r = this.#images.get(vnfs);
    return r ? { ...r } : null;
  }

  list(): VnfsImageRecord[] {
    return [...this.#images.values()].sort((a, b) => (a.vnfs < b.vnfs ? -1 : 1)).map((r) => ({ ...r }));
  }

  forget(vnfs: string): boolean {
    const had = this.#images.delete(vnfs);
    this.#holders.delete(vnfs);
    for (const fn of this.#fns) fn(vnfs);
    return had;
  }

  hold(vnfs: string, sha256: string, server: string): void {
    checkHeldSha(vnfs, sha256);
    let m = this.#holders.get(vnfs);
    if (!m) this.#holders.set(vnfs, (m = new Map()));
    m.set(server, { sha256, since: this.#now() });
  }

  holders(vnfs: string): VnfsImageHolder[] {
    return [...(this.#holders.get(vnfs) ?? new Map<string, { sha256: string; since: number }>()).entries()]
      .map(([server, h]) => ({ server, sha256: h.sha256, since: h.since, live: true }))
      .sort((a, b) => b.since - a.since || (a.server < b.server ? -1 : 1));
  }

  secret(): string {
    return this.#secret;
  }

  /** Every publish of this process is told; listening at once (`fn(null)` on the next microtask). */
  onPublished(fn: (vnfs: string | null) => void): () => void {
    this.#fns.add(fn);
    queueMicrotask(() => {
      if (this.#fns.has(fn)) fn(null);
    });
    return () => this.#fns.delete(fn);
  }
}
