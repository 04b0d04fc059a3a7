/**
 * The SQLite schema, as an ordered list of migrations. The version applied is kept in
 * `PRAGMA user_version`; opening a database runs the missing steps in one transaction, so an older
 * database is upgraded in place and never half-migrated. Never edit a released step: add one.
 */
import type Database from 'better-sqlite3';
import { RegistryUnavailableError } from '../errors.js';

export interface Migration {
  version: number;
  what: string;
  sql: string;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    what: 'nodes, groups and node attributes',
    sql: `
      CREATE TABLE groups (
        name TEXT PRIMARY KEY,
        vnfs TEXT, enabled INTEGER, debug INTEGER, desc TEXT
      );
      CREATE TABLE nodes (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        nodeid TEXT NOT NULL UNIQUE,
        grp TEXT, vnfs TEXT, enabled INTEGER, debug INTEGER, ipaddr TEXT, desc TEXT,
        state TEXT, lastcontact INTEGER, lastaddr TEXT
      );
      CREATE TABLE node_attrs (
        node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
        key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (node_id, key)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    what: 'boot mode, group attributes, unique fixed addresses',
    sql: `
      ALTER TABLE nodes ADD COLUMN boot TEXT;
      ALTER TABLE groups ADD COLUMN boot TEXT;
      CREATE TABLE group_attrs (
        grp TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE ON UPDATE CASCADE,
        key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (grp, key)
      ) WITHOUT ROWID;
      CREATE UNIQUE INDEX nodes_ipaddr ON nodes(ipaddr) WHERE ipaddr IS NOT NULL;
    `,
  },
  {
    version: 3,
    what: 'DHCP leases, unknown machines, boot timeline',
    sql: `
      CREATE TABLE leases (
        hwaddr TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        expires INTEGER NOT NULL,
        state TEXT NOT NULL,
        hostname TEXT, client_id TEXT, uuid TEXT
      );
      CREATE INDEX leases_address ON leases(address);
      CREATE TABLE unknown (
        nodeid TEXT PRIMARY KEY,
        lastaddr TEXT, via TEXT NOT NULL,
        firstseen INTEGER NOT NULL, lastseen INTEGER NOT NULL, count INTEGER NOT NULL
      );
      CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        time INTEGER NOT NULL, nodeid TEXT NOT NULL, source TEXT NOT NULL, stage TEXT NOT NULL,
        msg TEXT, ok INTEGER NOT NULL, addr TEXT
      );
      CREATE INDEX events_nodeid_time ON events(nodeid, time);
      CREATE INDEX events_time ON events(time);
    `,
  },
];

export const SCHEMA_VERSION = migrations[migrations.length - 1]!.version;

/**
 * Brings the database to `target` (default: the latest). Returns the versions before and after.
 * Refuses a database written by a newer provisiond rather than guessing.
 */
export function migrate(db: Database.Database, path: string, target = SCHEMA_VERSION): { from: number; to: number } {
  const run = db.transaction(() => {
    const from = db.pragma('user_version', { simple: true }) as number;
    if (from > SCHEMA_VERSION) {
      throw new RegistryUnavailableError(
        `registry database ${path} has schema version ${from}, newer than this provisiond knows (${SCHEMA_VERSION}): upgrade provisiond`,
      );
    }
    for (const m of migrations) {
      if (m.version > from && m.version <= target) {
        db.exec(m.sql);
        db.pragma(`user_version = ${m.version}`);
      }
    }
    return { from, to: Math.max(from, Math.min(target, SCHEMA_VERSION)) };
  });
  return run.immediate();
}
