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
  {
    version: 4,
    what: 'change log, so that a long-running process refreshes only what another process changed',
    sql: `
      CREATE TABLE changes (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, key TEXT NOT NULL);
      CREATE TRIGGER nodes_ins AFTER INSERT ON nodes BEGIN INSERT INTO changes (kind, key) VALUES ('node', NEW.nodeid); END;
      CREATE TRIGGER nodes_upd AFTER UPDATE ON nodes BEGIN
        INSERT INTO changes (kind, key) VALUES ('node', NEW.nodeid);
        INSERT INTO changes (kind, key) SELECT 'node', OLD.nodeid WHERE OLD.nodeid <> NEW.nodeid;
      END;
      CREATE TRIGGER nodes_del AFTER DELETE ON nodes BEGIN INSERT INTO changes (kind, key) VALUES ('node', OLD.nodeid); END;
      CREATE TRIGGER node_attrs_ins AFTER INSERT ON node_attrs BEGIN INSERT INTO changes (kind, key) SELECT 'node', nodeid FROM nodes WHERE id = NEW.node_id; END;
      CREATE TRIGGER node_attrs_upd AFTER UPDATE ON node_attrs BEGIN INSERT INTO changes (kind, key) SELECT 'node', nodeid FROM nodes WHERE id = NEW.node_id; END;
      CREATE TRIGGER node_attrs_del AFTER DELETE ON node_attrs BEGIN INSERT INTO changes (kind, key) SELECT 'node', nodeid FROM nodes WHERE id = OLD.node_id; END;
      CREATE TRIGGER groups_ins AFTER INSERT ON groups BEGIN INSERT INTO changes (kind, key) VALUES ('group', NEW.name); END;
      CREATE TRIGGER groups_upd AFTER UPDATE ON groups BEGIN
        INSERT INTO changes (kind, key) VALUES ('group', NEW.name);
        INSERT INTO changes (kind, key) SELECT 'group', OLD.name WHERE OLD.name <> NEW.name;
      END;
      CREATE TRIGGER groups_del AFTER DELETE ON groups BEGIN INSERT INTO changes (kind, key) VALUES ('group', OLD.name); END;
      CREATE TRIGGER group_attrs_ins AFTER INSERT ON group_attrs BEGIN INSERT INTO changes (kind, key) VALUES ('group', NEW.grp); END;
      CREATE TRIGGER group_attrs_upd AFTER UPDATE ON group_attrs BEGIN INSERT INTO changes (kind, key) VALUES ('group', NEW.grp); END;
      CREATE TRIGGER group_attrs_del AFTER DELETE ON group_attrs BEGIN INSERT INTO changes (kind, key) VALUES ('group', OLD.grp); END;
      CREATE TRIGGER leases_ins AFTER INSERT ON leases BEGIN INSERT INTO changes (kind, key) VALUES ('lease', NEW.hwaddr); END;
      CREATE TRIGGER leases_upd AFTER UPDATE ON leases BEGIN
        INSERT INTO changes (kind, key) VALUES ('lease', NEW.hwaddr);
        INSERT INTO changes (kind, key) SELECT 'lease', OLD.hwaddr WHERE OLD.hwaddr <> NEW.hwaddr;
      END;
      CREATE TRIGGER leases_del AFTER DELETE ON leases BEGIN INSERT INTO changes (kind, key) VALUES ('lease', OLD.hwaddr); END;
    `,
  },
  {
    version: 5,
    what: 'timeline: a DHCP offer and the ack that follows it share one row (half the timeline writes of a boot storm)',
    sql: `
      ALTER TABLE events ADD COLUMN prev_time INTEGER;
      ALTER TABLE events ADD COLUMN prev_stage TEXT;
      ALTER TABLE events ADD COLUMN prev_msg TEXT;
      ALTER TABLE events ADD COLUMN prev_ok INTEGER;
      ALTER TABLE events ADD COLUMN prev_addr TEXT;
    `,
  },
  {
    version: 6,
    what: 'declined addresses in their own table, keyed by address (they were leases of a made-up FF:FF:... hardware address)',
    sql: `
      CREATE TABLE declined (address TEXT PRIMARY KEY, expires INTEGER NOT NULL) WITHOUT ROWID;
      INSERT INTO declined (address, expires)
        SELECT address, max(expires) FROM leases WHERE state = 'declined' GROUP BY address;
      -- A decline that a later lease of the same address superseded is not kept (the lease is newer).
      DELETE FROM declined WHERE EXISTS (
        SELECT 1 FROM leases l WHERE l.address = declined.address AND l.state <> 'declined' AND l.expires > declined.expires);
      DELETE FROM leases WHERE state = 'declined';
      CREATE TRIGGER declined_ins AFTER INSERT ON declined BEGIN INSERT INTO changes (kind, key) VALUES ('declined', NEW.address); END;
      CREATE TRIGGER declined_upd AFTER UPDATE ON declined BEGIN INSERT INTO changes (kind, key) VALUES ('declined', NEW.address); END;
      CREATE TRIGGER declined_del AFTER DELETE ON declined BEGIN INSERT INTO changes (kind, key) VALUES ('declined', OLD.address); END;
    `,
  },
  {
    version: 7,
    what: 'what each node booted: the VNFS and the sha256 of its image, as the node reported them',
    sql: `
      ALTER TABLE nodes ADD COLUMN bootvnfs TEXT;
      ALTER TABLE nodes ADD COLUMN bootimage TEXT;
    `,
  },
  {
    version: 8,
    what: 'the admin API: tokens (hashes only), the audit log of changes, and tasks',
    sql: `
      CREATE TABLE api_tokens (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created INTEGER NOT NULL,
        expires INTEGER,
        last_used INTEGER,
        revoked INTEGER
      );
      CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        time INTEGER NOT NULL, who TEXT NOT NULL, role TEXT NOT NULL,
        action TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
        target TEXT, status INTEGER NOT NULL, detail TEXT
      );
      CREATE INDEX audit_time ON audit(time);
      CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        action TEXT NOT NULL,
        status TEXT NOT NULL,
        created INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        idempotency_key TEXT,
        body TEXT NOT NULL
      );
      CREATE UNIQUE INDEX tasks_idempotency ON tasks(created_by, idempotency_key) WHERE idempotency_key IS NOT NULL;
      CREATE INDEX tasks_status ON tasks(status);
    `,
  },
  {
    version: 9,
    what: 'per-boot node credentials (hashes only), one per node',
    sql: `
      CREATE TABLE node_credentials (
        nodeid TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        address TEXT,
        issued INTEGER NOT NULL,
        previous_hash TEXT
      );
    `,
  },
  {
    version: 10,
    what: 'the daemon\'s lease journal: the last of its group commits that the tables hold',
    sql: `
      CREATE TABLE lease_journal (id INTEGER PRIMARY KEY CHECK (id = 1), applied INTEGER NOT NULL);
      INSERT INTO lease_journal (id, applied) VALUES (1, 0);
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
