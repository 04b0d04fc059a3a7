/**
 * VNFS images across servers on one PostgreSQL (schema 8): the current image of each VNFS as its
 * last publisher built it (`vnfs_images`), the image each server holds (`vnfs_holders`), the
 * secret servers present to each other, and a listener of `provisiond_vnfs` notifications so that
 * a server hears of a publish within a round trip rather than at its next poll.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../../log/logger.js';
import type { VnfsImageHolder, VnfsImagePublication, VnfsImageRecord } from '../types.js';
import { pgConfig, type PgConnectOptions } from './connection.js';
import { LEADER_LEASE_MS } from './cluster.js';
import { checkHeldSha, checkPublication } from '../local-images.js';

export const IMAGES_CHANNEL = 'provisiond_vnfs';
const RELISTEN_MS = 2_000;

interface ImageRow {
  vnfs: string;
  sha256: string;
  bytes: number;
  built_at: number;
  builder: string;
  skeleton_sha256: string | null;
  config: string | null;
}

const COLUMNS = 'vnfs, sha256, bytes, built_at, builder, skeleton_sha256, config';

function imageFromRow(r: ImageRow): VnfsImageRecord {
  return { vnfs: r.vnfs, sha256: r.sha256, bytes: Number(r.bytes), builtAt: Number(r.built_at), builder: r.builder, skeletonSha256: r.skeleton_sha256, config: r.config };
}

type Query = <R extends pg.QueryResultRow>(what: string, sql: string, params?: unknown[]) => Promise<pg.QueryResult<R>>;
type Tx = <T>(what: string, fn: (c: pg.PoolClient) => Promise<T>, sync?: boolean) => Promise<T>;

export class PgImages {
  #listener: pg.Client | null = null;
  #retry: NodeJS.Timeout | null = null;
  /** A listening connection is being opened. */
  #connecting = false;
  #closed = false;
  readonly #fns = new Set<(vnfs: string | null) => void>();

  constructor(
    private readonly q: Query,
    private readonly tx: Tx,
    private readonly opts: PgConnectOptions,
    private readonly log: Logger,
  ) {}

  async publish(p: VnfsImagePublication): Promise<VnfsImageRecord> {
    checkPublication(p);
    return this.tx(
      `publishing the image of vnfs ${p.vnfs}`,
      async (c) => {
        const { rows } = await c.query<ImageRow>(
          `INSERT INTO vnfs_images (${COLUMNS}) VALUES ($1, $2, $3, (extract(epoch FROM clock_timestamp()) * 1000)::bigint, $4, $5, $6)
           ON CONFLICT (vnfs) DO UPDATE SET sha256 = EXCLUDED.sha256, bytes = EXCLUDED.bytes, built_at = EXCLUDED.built_at,
             builder = EXCLUDED.builder, skeleton_sha256 = EXCLUDED.skeleton_sha256, config = EXCLUDED.config
           RETURNING ${COLUMNS}`,
          [p.vnfs, p.sha256, p.bytes, p.builder, p.skeletonSha256, p.config],
        );
        await hold(c, p.vnfs, p.sha256, p.builder);
        return imageFromRow(rows[0]!);
      },
      false,
    );
  }

  async get(vnfs: string): Promise<VnfsImageRecord | null> {
    const { rows } = await this.q<ImageRow>('reading a vnfs image', `SELECT ${COLUMNS} FROM vnfs_images WHERE vnfs = $1`, [vnfs]);
    return rows[0] ? imageFromRow(rows[0]) : null;
  }

  async list(): Promise<VnfsImageRecord[]> {
    const { rows } = await this.q<ImageRow>('reading the vnfs images', `SELECT ${COLUMNS} FROM vnfs_images ORDER BY vnfs`);
    return rows.map(imageFromRow);
  }

  async forget(vnfs: string): Promise<boolean> {
    return this.tx(
      `forgetting the image of vnfs ${vnfs}`,
      async (c) => {
        const { rowCount } = await c.query('DELETE FROM vnfs_images WHERE vnfs = $1', [vnfs]);
        await c.query('DELETE FROM vnfs_holders WHERE vnfs = $1', [vnfs]);
        await c.query(`SELECT pg_notify('${IMAGES_CHANNEL}', $1)`, [vnfs]);
        return (rowCount ?? 0) > 0;
      },
      false,
    );
  }

  async hold(vnfs: string, sha256: string, server: string): Promise<void> {
    checkHeldSha(vnfs, sha256);
    await this.tx(`recording that ${server} holds vnfs ${vnfs}`, (c) => hold(c, vnfs, sha256, server), false);
  }

  async holders(vnfs: string): Promise<VnfsImageHolder[]> {
    // A server is live while one of its processes (servers rows share the address) beats.
    const { rows } = await this.q<{ server: string; sha256: string; since: number; live: boolean }>(
      'reading the holders of a vnfs image',
      `SELECT h.server, h.sha256, h.since,
              EXISTS (SELECT 1 FROM servers s WHERE s.address = h.server AND s.heartbeat >= now() - make_interval(secs => $2 / 1000.0)) AS live
         FROM vnfs_holders h WHERE h.vnfs = $1 ORDER BY h.since DESC, h.server`,
      [vnfs, LEADER_LEASE_MS],
    );
    return rows.map((r) => ({ server: r.server, sha256: r.sha256, since: Number(r.since), live: r.live }));
  }

  async secret(): Promise<string> {
    await this.q('making the cluster secret', 'INSERT INTO cluster_secret (singleton, secret) VALUES (true, $1) ON CONFLICT (singleton) DO NOTHING', [randomBytes(32).toString('hex')]);
    const { rows } = await this.q<{ secret: string }>('reading the cluster secret', 'SELECT secret FROM cluster_secret');
    return rows[0]!.secret;
  }

  /**
   * Listens for publishes (on the first subscriber); a lost connection is opened again every 2 s.
   * `fn(null)` once LISTEN is in place, and again each time it is back after a lost connection: the
   * notifications sent meanwhile are lost, so the subscriber reads the images again.
   */
  onPublished(fn: (vnfs: string | null) => void): () => void {
    this.#fns.add(fn);
    if (this.#listener) {
      queueMicrotask(() => {
        if (this.#fns.has(fn)) fn(null);
      });
    } else if (!this.#retry && !this.#connecting) {
      void this.#listen();
    }
    return () => this.#fns.delete(fn);
  }

  async #listen(): Promise<void> {
    this.#retry = null;
    if (this.#closed) return;
    this.#connecting = true;
    const client = new pg.Client(pgConfig({ ...this.opts, applicationName: 'provisiond vnfs listener' }));
    const lost = (err: unknown): void => {
      if (this.#listener !== client && this.#listener !== null) return;
      this.#listener = null;
      client.end().catch(() => {});
      if (this.#closed) return;
      this.log.warn({ err: String(err) }, 'vnfs image notifications lost: polling until the database answers again');
      this.#retry ??= setTimeout(() => void this.#listen(), RELISTEN_MS);
      this.#retry.unref();
    };
    client.on('error', lost);
    client.on('notification', (m) => {
      for (const fn of this.#fns) fn(m.payload ?? '');
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${IMAGES_CHANNEL}`);
      this.#listener = client;
      if (this.#closed) return await this.close();
    } catch (err) {
      lost(err);
      return;
    } finally {
      this.#connecting = false;
    }
    for (const fn of this.#fns) fn(null);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    const c = this.#listener;
    this.#listener = null;
    await c?.end().catch(() => {});
  }
}

async function hold(c: pg.ClientBase, vnfs: string, sha256: string, server: string): Promise<void> {
  await c.query(
    `INSERT INTO vnfs_holders (vnfs, server, sha256, since) VALUES ($1, $2, $3, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
     ON CONFLICT (vnfs, server) DO UPDATE SET sha256 = EXCLUDED.sha256, since = EXCLUDED.since`,
    [vnfs, server, sha256],
  );
}
