/**
 * The admin API's tables in the PostgreSQL backend: tokens (hashes only), the audit log and tasks.
 * Every write is its own committed transaction, so what the API acknowledged is durable; the unique
 * constraints (one live token per name, one task per caller and idempotency key) hold across servers.
 */
import { NodeNotFoundError } from '../../util/errors.js';
import { RegistryConflictError, RegistryValueError, TaskClaimLostError } from '../errors.js';
import { ROLES, TASK_STATUSES, type ApiToken, type AuditEntry, type ClaimedTask, type NodeCredential, type Role, type TaskClaim, type TaskPutOptions, type TaskRecord, type TaskStatus } from '../types.js';
import { PgAutoRegister } from './auto-register.js';

interface TokenRow {
  name: string;
  role: string;
  hash: string;
  created: number;
  expires: number | null;
  last_used: number | null;
  revoked: number | null;
}

const tokenOf = (r: TokenRow): ApiToken => ({
  name: r.name,
  role: r.role as Role,
  hash: r.hash,
  created: r.created,
  expires: r.expires,
  lastUsed: r.last_used,
  revoked: r.revoked,
});

// The rules of claimTasks ($1 the claimer, $2 the left tasks, $3 unclaimed too, $4 the lease in ms).
/** Left by a runner known to be gone, still as the caller saw it; not a task a server claimed (those go by heartbeats). */
const LEFT = `EXISTS (SELECT 1 FROM left_by l WHERE l.id = t.id AND l.runner IS NOT DISTINCT FROM t.body::jsonb ->> 'runner') AND (t.server IS NULL OR t.server = $1)`;
/** Queued, and no runner has claimed it yet. */
const UNCLAIMED = `$3 AND t.status = 'queued' AND t.body::jsonb ->> 'runner' IS NULL`;
/**
 * Claimed by another server that left, or whose heartbeat is older than the claimer's by the lease:
 * measured against the claimer's own heartbeat (which must be fresh), so that after an outage of the
 * database every server beats again before any is judged stopped.
 */
const SERVER_STOPPED = `$4::float8 IS NOT NULL AND t.server IS NOT NULL AND t.server <> $1
  AND EXISTS (SELECT 1 FROM servers m WHERE m.id = $1 AND m.heartbeat >= now() - make_interval(secs => $4 / 1000.0)
              AND NOT EXISTS (SELECT 1 FROM servers s WHERE s.id = t.server AND s.heartbeat >= m.heartbeat - make_interval(secs => $4 / 1000.0)))`;

const AUDIT_COLUMNS = 'id, time, who, role, action, method, path, target, status, detail';

interface CredentialRow {
  nodeid: string;
  hash: string;
  address: string | null;
  issued: string | number;
  previous_hash: string | null;
}

const credentialOf = (r: CredentialRow): NodeCredential => ({ nodeid: r.nodeid, hash: r.hash, address: r.address, issued: Number(r.issued), previousHash: r.previous_hash });

export abstract class PgAdmin extends PgAutoRegister {
  // ---- node credentials ----

  async putNodeCredential(cred: Omit<NodeCredential, 'previousHash'>): Promise<NodeCredential> {
    if (!/^[0-9a-f]{64}$/.test(cred.hash)) throw new RegistryValueError(`credential of ${cred.nodeid}: the hash must be 64 hex digits`);
    // The credential it replaces becomes previous_hash, in the same statement.
    const { rows } = await this.q<CredentialRow>(
      `storing the credential of ${cred.nodeid}`,
      `INSERT INTO node_credentials (nodeid, hash, address, issued) VALUES ($1, $2, $3, $4)
       ON CONFLICT (nodeid) DO UPDATE SET previous_hash = node_credentials.hash, hash = EXCLUDED.hash, address = EXCLUDED.address, issued = EXCLUDED.issued
       RETURNING *`,
      [cred.nodeid, cred.hash, cred.address, cred.issued],
    );
    return credentialOf(rows[0]!);
  }

  async getNodeCredential(nodeid: string): Promise<NodeCredential | null> {
    const { rows } = await this.q<CredentialRow>('looking up a node credential', 'SELECT * FROM node_credentials WHERE nodeid = $1', [nodeid]);
    return rows[0] ? credentialOf(rows[0]) : null;
  }

  async getNodeCredentialByHash(hash: string): Promise<NodeCredential | null> {
    const { rows } = await this.q<CredentialRow>('looking up a node credential', 'SELECT * FROM node_credentials WHERE hash = $1', [hash]);
    return rows[0] ? credentialOf(rows[0]) : null;
  }

  // ---- tokens ----

  async createToken(token: Omit<ApiToken, 'lastUsed' | 'revoked'>): Promise<ApiToken> {
    if (!ROLES.includes(token.role)) throw new RegistryValueError(`token ${token.name}: role ${JSON.stringify(token.role)} is not one of ${ROLES.join(', ')}`);
    if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(token.name)) {
      throw new RegistryValueError(`token name ${JSON.stringify(token.name)}: letters, digits, '.', '_', '@' and '-', at most 64`);
    }
    // The name of a revoked token may be given again; a live one is refused, atomically.
    const { rows } = await this.q<TokenRow>(
      `creating token ${token.name}`,
      `INSERT INTO api_tokens (name, role, hash, created, expires) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, hash = EXCLUDED.hash, created = EXCLUDED.created,
         expires = EXCLUDED.expires, last_used = NULL, revoked = NULL
       WHERE api_tokens.revoked IS NOT NULL
       RETURNING *`,
      [token.name, token.role, token.hash, token.created, token.expires],
    );
    if (!rows[0]) throw new RegistryConflictError(`a token named ${JSON.stringify(token.name)} exists: revoke it first`);
    return tokenOf(rows[0]);
  }

  async listTokens(): Promise<ApiToken[]> {
    return (await this.q<TokenRow>('listing tokens', 'SELECT * FROM api_tokens ORDER BY name')).rows.map(tokenOf);
  }

  async getTokenByHash(hash: string): Promise<ApiToken | null> {
    const { rows } = await this.q<TokenRow>('looking up a token', 'SELECT * FROM api_tokens WHERE hash = $1', [hash]);
    return rows[0] ? tokenOf(rows[0]) : null;
  }

  async revokeToken(name: string, time = Date.now()): Promise<ApiToken> {
    const { rows } = await this.q<TokenRow>(
      `revoking token ${name}`,
      'UPDATE api_tokens SET revoked = coalesce(revoked, $2) WHERE name = $1 RETURNING *',
      [name, time],
    );
    if (!rows[0]) throw new NodeNotFoundError(`no token named ${JSON.stringify(name)}`);
    return tokenOf(rows[0]);
  }

  async touchToken(name: string, time: number): Promise<void> {
    // Coarse (a minute): a busy orchestrator must not turn every request into a write.
    await this.q(`recording the use of token ${name}`, 'UPDATE api_tokens SET last_used = $1 WHERE name = $2 AND (last_used IS NULL OR last_used < $3)', [
      time,
      name,
      time - 60_000,
    ]);
  }

  // ---- audit ----

  async addAudit(entry: Omit<AuditEntry, 'id'>): Promise<AuditEntry> {
    const { rows } = await this.q<{ id: number }>(
      'recording an audit entry',
      'INSERT INTO audit (time, who, role, action, method, path, target, status, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id',
      [entry.time, entry.who, entry.role, entry.action, entry.method, entry.path, entry.target, entry.status, entry.detail],
    );
    return { ...entry, id: rows[0]!.id };
  }

  async listAudit(options: { before?: number; limit?: number; who?: string } = {}): Promise<AuditEntry[]> {
    const { rows } = await this.q<AuditEntry>(
      'listing the audit log',
      `SELECT ${AUDIT_COLUMNS} FROM audit WHERE id < $1 AND ($2::text IS NULL OR who = $2) ORDER BY id DESC LIMIT $3`,
      [options.before ?? Number.MAX_SAFE_INTEGER, options.who ?? null, options.limit ?? 100],
    );
    return rows;
  }

  // ---- tasks ----

  async putTask(task: TaskRecord, options: TaskPutOptions = {}): Promise<TaskRecord> {
    if (!TASK_STATUSES.includes(task.status)) throw new RegistryValueError(`task ${task.id}: status ${JSON.stringify(task.status)} is unknown`);
    const body = JSON.stringify(task);
    const guard = options.ifRunner;
    return this.tx(`writing task ${task.id}`, async (c) => {
      // With a guard, the row is written only while its runner is still the one given: the row is
      // locked first, so a claim by another server either came before (refused here) or waits.
      const held = (await c.query<{ runner: string | null }>("SELECT body::jsonb ->> 'runner' AS runner FROM tasks WHERE id = $1 FOR UPDATE", [task.id])).rows[0];
      if (held) {
        if (guard !== undefined && held.runner !== guard) throw new TaskClaimLostError(task.id, held.runner, `task ${task.id}: taken over by ${held.runner ?? 'nobody'}, not written for ${guard}`);
        await c.query('UPDATE tasks SET status = $2, body = $3 WHERE id = $1', [task.id, task.status, body]);
        return task;
      }
      const inserted = await c.query(
        `INSERT INTO tasks (id, action, status, created, created_by, idempotency_key, body) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (created_by, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING`,
        [task.id, task.action, task.status, task.created, task.createdBy, task.idempotencyKey, body],
      );
      if (inserted.rowCount) return task;
      // The same caller and key (possibly through another server): the first task stands.
      const { rows } = await c.query<{ body: string }>('SELECT body FROM tasks WHERE created_by = $1 AND idempotency_key = $2', [task.createdBy, task.idempotencyKey]);
      return JSON.parse(rows[0]!.body) as TaskRecord;
    });
  }

  /**
   * One statement: the rows to take are locked `FOR UPDATE SKIP LOCKED` (a row another server is
   * claiming or writing is skipped, not waited for; its conditions are checked again on the row as
   * committed), then given to `runner`. A server's claim names it in `server`, so that its tasks
   * are taken over when its heartbeat stops.
   */
  async claimTasks(runner: string, claim: TaskClaim): Promise<ClaimedTask[]> {
    const { rows } = await this.tx(
      'claiming tasks',
      (c) =>
        c.query<{ body: string; was: string | null; why: ClaimedTask['why'] }>(
          `WITH left_by AS (SELECT * FROM jsonb_to_recordset($2::jsonb) AS l(id text, runner text)),
                c AS (
                  SELECT t.id, t.body::jsonb ->> 'runner' AS was,
                         CASE WHEN ${LEFT} THEN 'left' WHEN ${UNCLAIMED} THEN 'unclaimed' ELSE 'server-stopped' END AS why
                    FROM tasks t
                   WHERE t.status NOT IN ('terminated', 'complete') AND NOT (t.action = ANY($5::text[]))
                     AND ((${LEFT}) OR (${UNCLAIMED}) OR (${SERVER_STOPPED}))
                   ORDER BY t.seq
                   LIMIT $6
                   FOR UPDATE OF t SKIP LOCKED)
           UPDATE tasks SET body = jsonb_set(tasks.body::jsonb, '{runner}', to_jsonb($1::text))::text,
                            server = (SELECT id FROM servers WHERE id = $1)
             FROM c WHERE tasks.id = c.id
           RETURNING tasks.body, c.was, c.why`,
          [runner, JSON.stringify(claim.left ?? []), claim.unclaimed === true, claim.leaseMs ?? null, [...(claim.skipActions ?? [])], claim.limit ?? 100],
        ),
      false,
    );
    return rows.map((r) => ({ task: JSON.parse(r.body) as TaskRecord, from: r.was, why: r.why }));
  }

  async getTask(id: string): Promise<TaskRecord | null> {
    const { rows } = await this.q<{ body: string }>('reading a task', 'SELECT body FROM tasks WHERE id = $1', [id]);
    return rows[0] ? (JSON.parse(rows[0].body) as TaskRecord) : null;
  }

  async listTasks(options: { status?: TaskStatus[]; unfinished?: boolean; before?: string; limit?: number } = {}): Promise<TaskRecord[]> {
    let statuses = options.status ?? null;
    if (options.unfinished) statuses = (statuses ?? TASK_STATUSES).filter((s) => s !== 'terminated' && s !== 'complete');
    const { rows } = await this.q<{ body: string }>(
      'listing tasks',
      `SELECT body FROM tasks
        WHERE seq < coalesce((SELECT seq FROM tasks WHERE id = $1), CASE WHEN $1::text IS NULL THEN 9223372036854775807 ELSE 0 END)
          AND ($2::text[] IS NULL OR status = ANY($2))
        ORDER BY seq DESC LIMIT $3`,
      [options.before ?? null, statuses, options.limit ?? 100],
    );
    return rows.map((r) => JSON.parse(r.body) as TaskRecord);
  }
}
