/**
 * Opens the registry named by `config.database`: `sqlite:PATH` (PATH relative to the statedir) is
 * the embedded default; `postgres://...` is reserved for the multi-server backend.
 */
import type { Config } from '../config/schema.js';
import { statePath } from '../config/load.js';
import type { Logger } from '../log/logger.js';
import { RegistryUnavailableError } from './errors.js';
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
  throw new RegistryUnavailableError(
    `${config.source}: database: the PostgreSQL backend (${config.database.split(':')[0]}://) is not implemented in this version; use sqlite:PATH`,
  );
}
