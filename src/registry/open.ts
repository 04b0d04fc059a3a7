/**
 * Opens the registry named by `config.database`: `sqlite:PATH` (PATH relative to the statedir) is
 * the embedded default; `postgres://user@host:port/db` (or `postgresql://`) is PostgreSQL, its
 * password from the URL, `databasePasswordFile`, or PGPASSWORD / ~/.pgpass as libpq reads them.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { statePath } from '../config/load.js';
import type { Logger } from '../log/logger.js';
import { RegistryUnavailableError } from './errors.js';
import { isPostgresUrl } from './postgres/connection.js';
import { PgRegistry } from './postgres/registry.js';
import { SqliteRegistry } from './sqlite/registry.js';
import type { SqliteRegistryOptions } from './sqlite/store.js';
import type { RegistryStore } from './types.js';

export interface OpenRegistryOptions {
  /** ms to wait for another process's lock before failing (default 5000). */
  busyTimeout?: number;
  /** ms servers' batched writes may wait before being written (default 50). */
  flushInterval?: number;
  /** Test hook: awaited before every batch commit (see SqliteRegistryOptions.beforeCommit). */
  beforeCommit?: () => Promise<void>;
  /** Told of every batch of the servers' writes (see SqliteRegistryOptions.onBatch). */
  onBatch?: SqliteRegistryOptions['onBatch'];
  /** SQLite: keep the lease journal (the daemon only; see sqlite/journal.ts). */
  leaseJournal?: boolean;
  /** PostgreSQL: keep the hot tables in memory, fresh by LISTEN/NOTIFY (the daemon; see postgres/cache.ts). */
  cache?: boolean;
}

/** The database file a `sqlite:` URL names, resolved against the statedir; null for other backends. */
export function sqlitePath(config: Pick<Config, 'database' | 'statedir'>): string | null {
  if (!config.database.startsWith('sqlite:')) return null;
  const p = config.database.slice('sqlite:'.length);
  return p === ':memory:' ? p : statePath(config, p);
}

/** Opens (creating and migrating) the configured registry. */
export async function openRegistry(config: Config, logger: Logger, options: OpenRegistryOptions = {}): Promise<RegistryStore> {
  const path = sqlitePath(config);
  if (path !== null) {
    if (path === '') throw new RegistryUnavailableError(`${config.source}: database: sqlite: needs a file path, e.g. sqlite:var/provisiond.db`);
    return SqliteRegistry.open({ path, logger: logger.child({ registry: 'sqlite' }), durability: config.dhcp.durability, ...options });
  }
  if (isPostgresUrl(config.database)) {
    const password = databasePassword(config);
    try {
      return await PgRegistry.open({ url: config.database, password, logger: logger.child({ registry: 'postgres' }), cache: options.cache ?? false });
    } catch (err) {
      throw new RegistryUnavailableError(`${config.source}: database: ${(err as Error).message}`, { cause: err });
    }
  }
  throw new RegistryUnavailableError(`${config.source}: database: ${JSON.stringify(config.database.split(':')[0])} is not a known backend; use sqlite:PATH or postgres://...`);
}

/** The password of `databasePasswordFile` (its first line), or null; errors name the file and the key. */
export function databasePassword(config: Pick<Config, 'databasePasswordFile' | 'statedir' | 'source'>): string | null {
  if (config.databasePasswordFile === null) return null;
  const file = statePath(config, config.databasePasswordFile);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RegistryUnavailableError(`${config.source}: databasePasswordFile: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const password = text.split(/\r?\n/)[0] ?? '';
  if (password === '') throw new RegistryUnavailableError(`${config.source}: databasePasswordFile: ${file} is empty (the password is its first line)`);
  return password;
}
