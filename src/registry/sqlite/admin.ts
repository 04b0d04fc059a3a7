/**
 * The admin API's tables in the SQLite backend: tokens (hashes only), the audit log and tasks. They
 * are read straight from the database (no in-memory index: they are small and not on a boot's hot
 * path) and every write is its own committed transaction, so what the API acknowledged is on disk.
 */
import type Database from 'better-sqlite3';
import { NodeNotFoundError } from '../../util/errors.js';
import { RegistryConflictError, RegistryValueError, TaskClaimLostError } from '../errors.js';
import { ROLES, TASK_STATUSES, type ApiToken, type AuditEntry, type ClaimedTask, type NodeCredential, type Role, type TaskClaim, type TaskPutOptions, type TaskRecord, type TaskStatus } from '../types.js';
import { SqliteAutoRegister } from './auto-register.js';

interface TokenRow {
  name: string;
  role: string;
  hash: string;
  created: number;
  expires: number | null;
  last_used: number | null;
  revoked: number | null;
}

interface CredentialRow {
  nodeid: string;
  hash: string;
  address: string | null;
  issued: number;
  previous_hash: string | null;
}

const credentialOf = (r: CredentialRow): NodeCredential => ({ nodeid: r.nodeid, hash: r.hash, address: r.address, issued: r.issued, previousHash: r.previous_hash });

interface TaskRow {
  id: string;
  body: string;
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

function prepareAdmin(db: Database.Database) {
  return {
    token: db.prepare<[string], TokenRow>('SELECT * FROM api_tokens WHERE name = ?'),
    tokenByHash: db.prepare<[string], TokenRow>('SELECT * FROM api_tokens WHERE hash = ?'),
    tokens: db.prepare<[], TokenRow>('SELECT * FROM api_tokens ORDER BY name'),
    putToken: db.prepare('INSERT OR REPLACE INTO api_tokens (name, role, hash, created, expires, last_used, revoked) VALUES (@name, @role, @hash, @created, @expires, NULL, NULL)'),
    revokeToken: db.prepare('UPDATE api_tokens SET revoked = ? WHERE name = ?'),
    touchToken: db.prepare('UPDATE api_tokens SET last_used = ? WHERE name = ? AND (last_used IS NULL OR last_used < ?)'),
    credential: db.prepare<[string], CredentialRow>('SELECT * FROM node_credentials WHERE nodeid = ?'),
    credentialByHash: db.prepare<[string], CredentialRow>('SELECT * FROM node_credentials WHERE hash = ?'),
    putCredential: db.prepare(
      'INSERT OR REPLACE INTO node_credentials (nodeid, hash, address, issued, previous_hash) VALUES (@nodeid, @hash, @address, @issued, (SELECT hash FROM node_credentials WHERE nodeid = @nodeid))',
    ),
    addAudit: db.prepare(
      'INSERT INTO audit (time, who, role, action, method, path, target, status, detail) VALUES (@time, @who, @role, @action, @method, @path, @target, @status, @detail)',
    ),
    audit: db.prepare<[number, string | null, string | null, number], AuditEntry>(
      'SELECT * FROM audit WHERE id < ? AND (? IS NULL OR who = ?) ORDER BY id DESC LIMIT ?',
    ),
    task: db.prepare<[string], TaskRow>('SELECT id, body FROM tasks WHERE id = ?'),
    taskSeq: db.prepare<[string], { seq: number }>('SELECT seq FROM tasks WHERE id = ?'),
    taskByKey: db.prepare<[string, string], TaskRow>('SELECT id, body FROM tasks WHERE created_by = ? AND idempotency_key = ?'),
    nextSeq: db.prepare('SELECT coalesce(max(seq), 0) + 1 FROM tasks').pluck(),
    insertTask: db.prepare(
      'INSERT INTO tasks (id, seq, action, status, created, created_by, idempotency_key, body) VALUES (@id, @seq, @action, @status, @created, @created_by, @idempotency_key, @body)',
    ),
    updateTask: db.prepare('UPDATE tasks SET status = @status, body = @body WHERE id = @id'),
    tasks: db.prepare<[number, number], TaskRow>('SELECT id, body FROM tasks WHERE seq < ? ORDER BY seq DESC LIMIT ?'),
    queuedTasks: db.prepare<[], TaskRow>("SELECT id, body FROM tasks WHERE status = 'queued' ORDER BY seq"),
    tasksByStatus: db.prepare<[number, string, number], TaskRow>(
      'SELECT id, body FROM tasks WHERE seq < ? AND status IN (SELECT value FROM json_each(?)) ORDER BY seq DESC LIMIT ?',
    ),
  };
}

export abstract class SqliteAdmin extends SqliteAutoRegister {
  #st: ReturnType<typeof prepareAdmin> | null = null;

  private get adminSt(): ReturnType<typeof prepareAdmin> {
    this.assertOpen();
    return (this.#st ??= prepareAdmin(this.db));
  }

  // ---- tokens ----

  async createToken(token: Omit<ApiToken, 'lastUsed' | 'revoked'>): Promise<ApiToken> {
    if (!ROLES.includes(token.role)) throw new RegistryValueError(`token ${token.name}: role ${JSON.stringify(token.role)} is not one of ${ROLES.join(', ')}`);
    if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/.test(token.name)) {
      throw new RegistryValueError(`token name ${JSON.stringify(token.name)}: letters, digits, '.', '_', '@' and '-', at most 64`);
    }
    return this.write(`creating token ${token.name}`, () => {
      const old = this.adminSt.token.get(token.name);
      if (old && old.revoked === null) throw new RegistryConflictError(`a token named ${JSON.stringify(token.name)} exists: revoke it first`);
      this.adminSt.putToken.run(token);
      return tokenOf(this.adminSt.token.get(token.name)!);
    });
  }

  async listTokens(): Promise<ApiToken[]> {
    return this.adminSt.tokens.all().map(tokenOf);
  }

  async getTokenByHash(hash: string): Promise<ApiToken | null> {
    const row = this.adminSt.tokenByHash.get(hash);
    return row ? tokenOf(row) : null;
  }

  async revokeToken(name: string, time = Date.now()): Promise<ApiToken> {
    return this.write(`revoking token ${name}`, () => {
      const old = this.adminSt.token.get(name);
      if (!old) throw new NodeNotFoundError(`no token named ${JSON.stringify(name)}`);
      if (old.revoked === null) this.adminSt.revokeToken.run(time, name);
      return tokenOf(this.adminSt.token.get(name)!);
    });
  }

  async touchToken(name: string, time: number): Promise<void> {
    // Coarse (a minute): a busy orchestrator must not turn every request into a write.
    this.write(`recording the use of token ${name}`, () => this.adminSt.touchToken.run(time, name, time - 60_000));
  }

  // ---- node credentials ----

  async putNodeCredential(cred: Omit<NodeCredential, 'previousHash'>): Promise<NodeCredential> {
    if (!/^[0-9a-f]{64}$/.test(cred.hash)) throw new RegistryValueError(`credential of ${cred.nodeid}: the hash must be 64 hex digits`);
    return this.write(`storing the credential of ${cred.nodeid}`, () => {
      this.adminSt.putCredential.run(cred);
      return credentialOf(this.adminSt.credential.get(cred.nodeid)!);
    });
  }

  async getNodeCredential(nodeid: string): Promise<NodeCredential | null> {
    const row = this.adminSt.credential.get(nodeid);
    return row ? credentialOf(row) : null;
  }

  async getNodeCredentialByHash(hash: string): Promise<NodeCredential | null> {
    const row = this.adminSt.credentialByHash.get(hash);
    return row ? credentialOf(row) : null;
  }

  // ---- audit ----

  async addAudit(entry: Omit<AuditEntry, 'id'>): Promise<AuditEntry> {
    return this.write('recording an audit entry', () => {
      const { lastInsertRowid } = this.adminSt.addAudit.run(entry);
      return { ...entry, id: Number(lastInsertRowid) };
    });
  }

  async listAudit(options: { before?: number; limit?: number; who?: string } = {}): Promise<AuditEntry[]> {
    const who = options.who ?? null;
    return this.adminSt.audit.all(options.before ?? Number.MAX_SAFE_INTEGER, who, who, options.limit ?? 100);
  }

  // ---- tasks ----

  async putTask(task: TaskRecord, options: TaskPutOptions = {}): Promise<TaskRecord> {
    if (!TASK_STATUSES.includes(task.status)) throw new RegistryValueError(`task ${task.id}: status ${JSON.stringify(task.status)} is unknown`);
    // A refusal is returned, not thrown: a transaction that throws makes the store reload its index.
    const written = this.write(`writing task ${task.id}`, (): TaskRecord | { lostTo: string | null } => {
      const st = this.adminSt;
      const body = JSON.stringify(task);
      const stored = st.task.get(task.id);
      if (stored) {
        const runner = (JSON.parse(stored.body) as TaskRecord).runner;
        if (options.ifRunner !== undefined && runner !== options.ifRunner) return { lostTo: runner };
        st.updateTask.run({ id: task.id, status: task.status, body });
        return task;
      }
      if (task.idempotencyKey !== null) {
        const same = st.taskByKey.get(task.createdBy, task.idempotencyKey);
        if (same) return JSON.parse(same.body) as TaskRecord;
      }
      st.insertTask.run({
        id: task.id,
        seq: st.nextSeq.get() as number,
        action: task.action,
        status: task.status,
        created: task.created,
        created_by: task.createdBy,
        idempotency_key: task.idempotencyKey,
        body,
      });
      return task;
    });
    if ('lostTo' in written) throw new TaskClaimLostError(task.id, written.lostTo, `task ${task.id}: taken over by ${written.lostTo ?? 'nobody'}, not written for ${options.ifRunner}`);
    return written;
  }

  /**
   * One write transaction: SQLite has one writer at a time, so a claim is atomic without row locks.
   * No server heartbeats here (one server per SQLite file): `leaseMs` claims nothing.
   */
  async claimTasks(runner: string, claim: TaskClaim): Promise<ClaimedTask[]> {
    const skip = new Set(claim.skipActions ?? []);
    const limit = claim.limit ?? 100;
    return this.write('claiming tasks', () => {
      const st = this.adminSt;
      const out: ClaimedTask[] = [];
      const take = (row: TaskRow, why: ClaimedTask['why']): void => {
        const task = JSON.parse(row.body) as TaskRecord;
        const from = task.runner;
        task.runner = runner;
        st.updateTask.run({ id: task.id, status: task.status, body: JSON.stringify(task) });
        out.push({ task, from, why });
      };
      for (const { id, runner: was } of claim.left ?? []) {
        if (out.length >= limit) break;
        const row = st.task.get(id);
        if (!row) continue;
        const task = JSON.parse(row.body) as TaskRecord;
        if (task.runner === was && task.status !== 'terminated' && task.status !== 'complete' && !skip.has(task.action)) take(row, 'left');
      }
      if (claim.unclaimed) {
        for (const row of st.queuedTasks.all()) {
          if (out.length >= limit) break;
          const task = JSON.parse(row.body) as TaskRecord;
          if (task.runner === null && !skip.has(task.action) && !out.some((c) => c.task.id === task.id)) take(row, 'unclaimed');
        }
      }
      return out;
    });
  }

  async getTask(id: string): Promise<TaskRecord | null> {
    const row = this.adminSt.task.get(id);
    return row ? (JSON.parse(row.body) as TaskRecord) : null;
  }

  async listTasks(options: { status?: TaskStatus[]; unfinished?: boolean; before?: string; limit?: number } = {}): Promise<TaskRecord[]> {
    const st = this.adminSt;
    const before = options.before === undefined ? Number.MAX_SAFE_INTEGER : (st.taskSeq.get(options.before)?.seq ?? 0);
    const limit = options.limit ?? 100;
    let statuses = options.status;
    if (options.unfinished) statuses = (statuses ?? TASK_STATUSES).filter((s) => s !== 'terminated' && s !== 'complete');
    const rows = statuses ? st.tasksByStatus.all(before, JSON.stringify(statuses), limit) : st.tasks.all(before, limit);
    return rows.map((r) => JSON.parse(r.body) as TaskRecord);
  }
}
