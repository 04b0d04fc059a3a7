/**
 * Connecting to the PostgreSQL registry: the URL of config `database` (`postgres://user@host:port/db`,
 * `?sslmode=`, a socket folder as `?host=/run/postgresql`), the password from the URL, a password
 * file or PGPASSWORD (read by the caller and passed in: nothing here reads the environment), a pool
 * whose 64-bit integers come back as numbers (times in ms since the epoch), and PostgreSQL's errors
 * turned into messages an admin can act on.
 */
import pg from 'pg';
import { ProvisiondError } from '../../util/errors.js';
import { RegistryConflictError, RegistryUnavailableError } from '../errors.js';

export interface PgConnectOptions {
  /** `postgres://user@host:port/db?sslmode=...` (or `postgresql://`). */
  url: string;
  /** Used when the URL has none (from a password file or PGPASSWORD, read by the caller). */
  password?: string | null;
  /** Connections of the pool (default 10). */
  poolSize?: number;
  /** ms to wait for a connection before failing (default 10000). */
  connectTimeout?: number;
  /** `application_name` the server shows in pg_stat_activity (default provisiond). */
  applicationName?: string;
}

const INT8 = 20;
const NUMERIC_TYPES = {
  getTypeParser(oid: number, format?: string) {
    if (oid === INT8) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:@/]*):[^@/]*@/, '$1:***@');
}

/** True for `postgres://` and `postgresql://` URLs. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

/** The client settings of `o` (a pool's, or the one connection that listens for changes). */
export function pgConfig(o: PgConnectOptions): pg.PoolConfig {
  if (!isPostgresUrl(o.url)) throw new TypeError(`not a postgres:// URL: ${redactUrl(o.url)}`);
  const config: pg.PoolConfig = {
    connectionString: o.url,
    max: o.poolSize ?? 10,
    connectionTimeoutMillis: o.connectTimeout ?? 10_000,
    idleTimeoutMillis: 30_000,
    application_name: o.applicationName ?? 'provisiond',
    types: NUMERIC_TYPES,
    // Acknowledged means durable: every commit waits for its WAL to be flushed, whatever the
    // server's default (a site that set synchronous_commit=off globally still gets it here).
    options: '-c synchronous_commit=on',
  };
  const hasPassword = /^postgres(?:ql)?:\/\/[^:@/]*:[^@/]*@/.test(o.url);
  if (!hasPassword && o.password) config.password = o.password;
  return config;
}

export function createPool(o: PgConnectOptions): pg.Pool {
  const pool = new pg.Pool(pgConfig(o));
  // An idle connection that the server closes (a restart) must not crash the daemon: the pool
  // drops it and the next query opens a new one.
  pool.on('error', () => {});
  // The same for a connection lent out between two queries (a transaction awaiting its next step):
  // the pool listens to its clients only while they are idle, and an 'error' nobody listens to
  // would end the process. The query in flight, or the next one, fails with the error instead, and
  // the pool drops the connection when it is given back.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/** SQLSTATE of a PostgreSQL error, or undefined. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Turns PostgreSQL's and the network's errors into registry errors. ProvisiondErrors pass through. */
export function describePgError(url: string, what: string, err: unknown): Error {
  if (err instanceof ProvisiondError) return err;
  const code = sqlState(err);
  const msg = (err as Error)?.message ?? String(err);
  const where = `${what}: registry database ${redactUrl(url)}`;
  if (code === '23505' || code === '23503' || code === '23P01') return new RegistryConflictError(`${what}: ${msg}`, { cause: err });
  if (code === '40001' || code === '40P01') return new RegistryConflictError(`${what}: concurrent change, try again (${msg})`, { cause: err });
  if (code === '28P01' || code === '28000') return new RegistryUnavailableError(`${where}: authentication failed (${msg}): check the user, the password file or PGPASSWORD`, { cause: err });
  if (code === '3D000') return new RegistryUnavailableError(`${where}: the database does not exist (create it with createdb)`, { cause: err });
  if (code?.startsWith('08') || code?.startsWith('57') || code?.startsWith('53') || (code && /^E[A-Z]+$/.test(code)) || /timeout|terminated|Connection/i.test(msg)) {
    return new RegistryUnavailableError(`${where} is unreachable: ${msg}`, { cause: err, unreachable: true });
  }
  return new RegistryUnavailableError(`${where}: ${msg}`, { cause: err });
}
