/**
 * Several servers on one PostgreSQL: who is there (the `servers` table, a heartbeat each second)
 * and who does the singleton work (the one `leader` row). Times are the database's `now()`
 * (timestamptz): no server's clock or time zone is trusted.
 *
 * Leadership: each heartbeat keeps the row when it is ours, or takes it when its heartbeat is older
 * than the lease (LEADER_LEASE_MS), raising `generation`: a killed leader is replaced within the
 * lease plus a heartbeat. Fencing: singleton work writes through `fenced()`, whose transaction first
 * locks the leader row (FOR SHARE) and checks that it is still ours at our generation. A stale
 * leader (stopped, then woken) still believing it leads cannot write: its check fails, and a
 * takeover waits for a fenced write in flight to commit, so none interleave.
 */
import type pg from 'pg';
import type { Logger } from '../../log/logger.js';
import { ProvisiondError } from '../../util/errors.js';
import type { ClusterStatus } from '../types.js';

/** How long a leader's heartbeat holds the role (ms): a dead leader is replaced after it. */
export const LEADER_LEASE_MS = 5_000;
/** How often each server beats (ms). */
export const HEARTBEAT_MS = 1_000;

/** A singleton write refused: this server is not (or no longer) the leader at its generation. */
export class FencedError extends ProvisiondError {}

export interface ServerIdentity {
  /** Unique among the servers: `HOST:PID` by default. */
  id: string;
  /** Where admins and the other servers reach it (its master address, HTTP port). */
  address: string;
  version: string;
}


/** The servers and the leader as the database has them. */
export async function clusterStatus(db: pg.Pool | pg.ClientBase): Promise<ClusterStatus> {
  const { rows: lr } = await db.query<{ server: string; generation: number; heartbeat: Date; lag: number }>(
    'SELECT server, generation, heartbeat, (extract(epoch FROM now() - heartbeat) * 1000)::float8 AS lag FROM leader',
  );
  const l = lr[0];
  const { rows } = await db.query<{ id: string; address: string; version: string; started: Date; heartbeat: Date; lag: number }>(
    'SELECT id, address, version, started, heartbeat, (extract(epoch FROM now() - heartbeat) * 1000)::float8 AS lag FROM servers ORDER BY id',
  );
  return {
    servers: rows.map((r) => ({ id: r.id, address: r.address, version: r.version, started: r.started, heartbeat: r.heartbeat, lagMs: r.lag, leader: l?.server === r.id && l.lag < LEADER_LEASE_MS })),
    leader: l ? { server: l.server, generation: Number(l.generation), heartbeat: l.heartbeat, lagMs: l.lag } : null,
  };
}

export class ClusterMember {
  /** Our generation while we believe we lead; null otherwise. */
  private generation: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private beating: Promise<void> | null = null;
  private stopped = false;
  private lastError = 0;
  /** Told when this server becomes or stops being the leader. */
  onLeadership: (leader: boolean, generation: number | null) => void = () => {};

  constructor(
    private readonly pool: pg.Pool,
    readonly me: ServerIdentity,
    private readonly log: Logger,
    private readonly opts: { leaseMs?: number; heartbeatMs?: number } = {},
  ) {}

  /** True while this server believes it leads (singleton work still writes through fenced()). */
  get isLeader(): boolean {
    return this.generation !== null;
  }

  get id(): string {
    return this.me.id;
  }

  get leaseMs(): number {
    return this.opts.leaseMs ?? LEADER_LEASE_MS;
  }

  get currentGeneration(): number | null {
    return this.generation;
  }

  /** Registers this server, tries for the leadership once, then beats every second. */
  async start(): Promise<void> {
    await this.pool.query('INSERT INTO servers (id, address, version, started, heartbeat) VALUES ($1, $2, $3, now(), now()) ON CONFLICT (id) DO UPDATE SET address = $2, version = $3, started = now(), heartbeat = now()', [
      this.me.id,
      this.me.address,
      this.me.version,
    ]);
    await this.beat();
    const loop = (): void => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.beating = this.beat().finally(loop);
      }, this.opts.heartbeatMs ?? HEARTBEAT_MS);
      this.timer.unref();
    };
    loop();
  }

  /** Records where this server is reached, once its HTTP port is bound (port 0 in the config: the kernel's pick). */
  async setAddress(address: string): Promise<void> {
    if (address === this.me.address) return;
    await this.pool.query('UPDATE servers SET address = $2 WHERE id = $1', [this.me.id, address]);
    this.me.address = address;
  }

  /** One heartbeat: our row, and the leader row kept or taken. */
  async beat(): Promise<void> {
    const lease = this.opts.leaseMs ?? LEADER_LEASE_MS;
    // A beat left unanswered for a lease (a database host that vanished: no error, no answer) proves
    // nothing any more: another server may lead by now, so this one stops acting as the leader.
    const unanswered = setTimeout(() => this.become(null), lease);
    unanswered.unref();
    try {
      await this.pool.query('UPDATE servers SET heartbeat = now() WHERE id = $1', [this.me.id]);
      const { rows } = await this.pool.query<{ generation: number }>(
        `INSERT INTO leader (singleton, server, generation, heartbeat) VALUES (true, $1, 1, now())
         ON CONFLICT (singleton) DO UPDATE SET server = EXCLUDED.server, heartbeat = now(),
           generation = CASE WHEN leader.server = EXCLUDED.server AND leader.heartbeat >= now() - make_interval(secs => $2 / 1000.0)
                             THEN leader.generation ELSE leader.generation + 1 END
         WHERE leader.server = EXCLUDED.server OR leader.heartbeat < now() - make_interval(secs => $2 / 1000.0)
         RETURNING generation`,
        [this.me.id, lease],
      );
      this.become(rows[0] ? Number(rows[0].generation) : null);
    } catch (err) {
      // The database out of reach: we cannot prove we lead, so we stop acting as the leader.
      this.become(null);
      const now = Date.now();
      if (now - this.lastError > 10_000) {
        this.lastError = now;
        this.log.warn({ err: String(err) }, 'cluster heartbeat failed: not leading until the database answers');
      }
    } finally {
      clearTimeout(unanswered);
    }
  }

  private become(generation: number | null): void {
    const was = this.generation;
    this.generation = generation;
    if (was === generation) return;
    if (generation !== null && was === null) this.log.info({ server: this.me.id, generation }, 'cluster: this server is now the leader');
    else if (generation === null) this.log.warn({ server: this.me.id, generation: was }, 'cluster: this server is no longer the leader');
    else this.log.warn({ server: this.me.id, from: was, generation }, 'cluster: leadership taken again at a new generation');
    this.onLeadership(generation !== null, generation);
  }

  /**
   * Runs singleton work's writes in one transaction fenced by our generation: FencedError (nothing
   * written) when the leader row is not ours at that generation any more.
   */
  async fenced<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const generation = this.generation;
    if (generation === null) throw new FencedError(`${what}: this server (${this.me.id}) is not the leader`);
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const { rows } = await c.query<{ generation: number; server: string }>('SELECT server, generation FROM leader FOR SHARE');
      const row = rows[0];
      if (!row || row.server !== this.me.id || Number(row.generation) !== generation) {
        throw new FencedError(`${what}: refused, this server (${this.me.id}) led at generation ${generation}, the leader is now ${row?.server ?? 'nobody'} at generation ${row?.generation ?? '-'}`);
      }
      const result = await fn(c);
      await c.query('COMMIT');
      return result;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      if (err instanceof FencedError) this.become(null);
      throw err;
    } finally {
      c.release();
    }
  }

  /** Stops beating, gives the leadership up (another server takes it at once) and leaves the list. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.beating?.catch(() => {});
    try {
      await this.pool.query("UPDATE leader SET heartbeat = '-infinity' WHERE server = $1", [this.me.id]);
      await this.pool.query('DELETE FROM servers WHERE id = $1', [this.me.id]);
    } catch {
      // Gone with the database: the others take over when its heartbeat ages.
    }
    this.generation = null;
  }
}
