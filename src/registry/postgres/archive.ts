/**
 * Dumping and restoring a whole PostgreSQL registry (see ../archive.ts): restore fills an empty
 * database in one transaction with multi-row inserts, keeping the audit log's ids.
 */
import type pg from 'pg';
import { RegistryConflictError } from '../errors.js';
import { allAudit, allTasks, type RegistryDump } from '../archive.js';
import type { DeclinedAddress, GroupRecord, Lease, UnknownNode } from '../types.js';
import { PgAdmin } from './admin.js';
import { eventFromRow, groupParams, leaseParams, nodeParams, type EventRow } from './rows.js';

/** Rows per INSERT (PostgreSQL takes at most 65535 parameters per statement). */
const CHUNK = 500;

async function insertRows(c: pg.PoolClient, table: string, columns: string, rows: unknown[][]): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK);
    const width = chunk[0]!.length;
    const values = chunk.map((_, r) => `(${Array.from({ length: width }, (_, k) => `$${r * width + k + 1}`).join(', ')})`).join(', ');
    await c.query(`INSERT INTO ${table} (${columns}) VALUES ${values}`, chunk.flat());
  }
}

export abstract class PgArchive extends PgAdmin {
  abstract listGroups(): Promise<GroupRecord[]>;
  abstract listLeases(): Promise<Lease[]>;
  abstract listDeclined(): Promise<DeclinedAddress[]>;
  abstract listUnknown(): Promise<UnknownNode[]>;

  async dump(): Promise<RegistryDump> {
    await this.drain();
    const events = (await this.q<EventRow>('reading the timeline', 'SELECT time, nodeid, source, stage, msg, ok, addr FROM events ORDER BY time, id')).rows.map(eventFromRow);
    return {
      nodes: await this.listNodes(),
      groups: await this.listGroups(),
      leases: await this.listLeases(),
      declined: await this.listDeclined(),
      unknown: await this.listUnknown(),
      events,
      tokens: await this.listTokens(),
      audit: await allAudit((o) => this.listAudit(o)),
      tasks: await allTasks((o) => this.listTasks(o)),
    };
  }

  async restore(d: RegistryDump): Promise<void> {
    await this.tx('restoring a registry dump', async (c) => {
      const { rows } = await c.query<{ n: number }>(
        'SELECT (SELECT count(*) FROM nodes) + (SELECT count(*) FROM groups) + (SELECT count(*) FROM leases) + (SELECT count(*) FROM events) + (SELECT count(*) FROM tasks) + (SELECT count(*) FROM api_tokens) + (SELECT count(*) FROM audit) AS n',
      );
      if (Number(rows[0]!.n) > 0) throw new RegistryConflictError(`registry database ${this.where} is not empty: copy into a new database`);
      await insertRows(c, 'groups', 'name, vnfs, enabled, debug, boot, description, attrs', d.groups.map(groupParams));
      await insertRows(c, 'nodes', 'name, nodeid, grp, vnfs, enabled, debug, ipaddr, description, boot, state, lastcontact, lastaddr, bootvnfs, bootimage, attrs', d.nodes.map(nodeParams));
      await insertRows(c, 'leases', 'hwaddr, address, expires, state, hostname, client_id, uuid', d.leases.map(leaseParams));
      await insertRows(c, 'declined', 'address, expires', d.declined.map((x) => [x.address, x.expires]));
      await insertRows(c, 'unknown', 'nodeid, lastaddr, via, firstseen, lastseen, count', d.unknown.map((u) => [u.nodeid, u.lastaddr, u.via, u.firstseen, u.lastseen, u.count]));
      await insertRows(c, 'events', 'time, nodeid, source, stage, msg, ok, addr', d.events.map((e) => [e.time, e.nodeid, e.source, e.stage, e.msg, e.ok, e.addr ?? null]));
      await insertRows(c, 'api_tokens', 'name, role, hash, created, expires, last_used, revoked', d.tokens.map((t) => [t.name, t.role, t.hash, t.created, t.expires, t.lastUsed, t.revoked]));
      await insertRows(c, 'audit', 'id, time, who, role, action, method, path, target, status, detail', d.audit.map((a) => [a.id, a.time, a.who, a.role, a.action, a.method, a.path, a.target, a.status, a.detail]));
      // The next audit entry follows the copied ones.
      await c.query("SELECT setval(pg_get_serial_sequence('audit', 'id'), greatest((SELECT max(id) FROM audit), 1), (SELECT count(*) > 0 FROM audit))");
      await insertRows(c, 'tasks', 'id, action, status, created, created_by, idempotency_key, body', d.tasks.map((t) => [t.id, t.action, t.status, t.created, t.createdBy, t.idempotencyKey, JSON.stringify(t)]));
    });
  }
}
