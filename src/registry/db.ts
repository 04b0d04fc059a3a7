/**
 * What `provisiond db status|migrate|copy` do (the CLI only parses and prints): the schema version
 * of the configured registry against the one this provisiond knows, upgrading it, and copying a
 * whole SQLite registry into an empty PostgreSQL database.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Config } from '../config/schema.js';
import { statePath } from '../config/load.js';
import type { Logger } from '../log/logger.js';
import { UsageError } from '../util/errors.js';
import { dumpCounts, type RegistryDump } from './archive.js';
import { RegistryUnavailableError } from './errors.js';
import { databasePassword, openRegistry, sqlitePath } from './open.js';
import { createPool, describePgError, isPostgresUrl, redactUrl } from './postgres/connection.js';
import { PG_SCHEMA_VERSION, schemaVersion } from './postgres/migrations.js';
import { PgRegistry } from './postgres/registry.js';
import { SCHEMA_VERSION } from './sqlite/migrations.js';
import { SqliteRegistry } from './sqlite/registry.js';

export interface SchemaStatus {
  backend: 'sqlite' | 'postgres';
  /** The file or the URL (without its password). */
  database: string;
  /** Schema version of the database (0: none yet). */
  version: number;
  /** The version this provisiond writes. */
  latest: number;
  state: 'empty' | 'behind' | 'current' | 'newer';
}

const stateOf = (version: number, latest: number): SchemaStatus['state'] =>
  version === 0 ? 'empty' : version < latest ? 'behind' : version === latest ? 'current' : 'newer';

/** The schema version of the configured registry; changes nothing. */
export async function schemaStatus(config: Config): Promise<SchemaStatus> {
  const path = sqlitePath(config);
  if (path !== null) {
    let version = 0;
    if (path !== ':memory:' && existsSync(path)) {
      const db = new Database(path, { readonly: true, fileMustExist: true });
      try {
        version = db.pragma('user_version', { simple: true }) as number;
      } finally {
        db.close();
      }
    }
    return { backend: 'sqlite', database: path, version, latest: SCHEMA_VERSION, state: stateOf(version, SCHEMA_VERSION) };
  }
  const pool = createPool({ url: config.database, password: databasePassword(config), poolSize: 1 });
  try {
    const client = await pool.connect().catch((err: unknown) => {
      throw describePgError(config.database, 'reading the schema version', err);
    });
    try {
      const version = await schemaVersion(client);
      return { backend: 'postgres', database: redactUrl(config.database), version, latest: PG_SCHEMA_VERSION, state: stateOf(version, PG_SCHEMA_VERSION) };
    } finally {
      client.release();
    }
  } finally {
    await pool.end();
  }
}

/** Brings the configured registry to the latest schema (what the daemon does at start). */
export async function migrateRegistry(config: Config, logger: Logger): Promise<{ before: SchemaStatus; after: SchemaStatus }> {
  const before = await schemaStatus(config);
  if (before.state === 'newer') {
    throw new RegistryUnavailableError(`registry database ${before.database} has schema version ${before.version}, newer than this provisiond knows (${before.latest}): upgrade provisiond`);
  }
  const reg = await openRegistry(config, logger);
  await reg.close();
  return { before, after: await schemaStatus(config) };
}

/**
 * Copies every node, group, attribute, lease, declined address, unknown machine, timeline step,
 * token, audit entry and task of the SQLite registry `from` (`sqlite:PATH`, PATH relative to the
 * statedir) into the empty PostgreSQL database `to`, in one transaction, and checks that the copy
 * holds as many of each as the source. Returns the counts.
 */
export async function copyRegistry(config: Config, from: string, to: string, logger: Logger): Promise<Record<keyof RegistryDump, number>> {
  if (!from.startsWith('sqlite:') || from === 'sqlite:') throw new UsageError(`copy from ${JSON.stringify(from)}: expected sqlite:PATH`);
  if (!isPostgresUrl(to)) throw new UsageError(`copy to ${JSON.stringify(redactUrl(to))}: expected postgres://USER@HOST:PORT/DB`);
  const path = statePath(config, from.slice('sqlite:'.length));
  if (!existsSync(path)) throw new UsageError(`copy from ${path}: no such database file`);
  const source = SqliteRegistry.open({ path, logger, writerThread: false });
  let dump: RegistryDump;
  try {
    dump = await source.dump();
  } finally {
    await source.close();
  }
  const target = await PgRegistry.open({ url: to, password: databasePassword(config), logger });
  try {
    await target.restore(dump);
    const want = dumpCounts(dump);
    const got = dumpCounts(await target.dump());
    for (const k of Object.keys(want) as Array<keyof RegistryDump>) {
      if (want[k] !== got[k]) throw new RegistryUnavailableError(`copy to ${target.where}: ${got[k]} ${k} copied of ${want[k]}`);
    }
    return got;
  } finally {
    await target.close();
  }
}
