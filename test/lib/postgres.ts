/**
 * A real PostgreSQL for the tests: Debian's server binaries (/usr/lib/postgresql/N/bin), a cluster
 * initialized in a temp folder owned by an unprivileged user (PostgreSQL refuses to run as root),
 * listening on a unix socket in that folder only. Stopped and removed in the test's teardown, and
 * also when the process is interrupted (cleanup.ts), so a failing run never leaves a server behind.
 *
 * `createDatabase()` gives each test an empty database of its own, dropped at its teardown.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { onCleanup } from './cleanup.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface PostgresServer {
  /** The folder holding the cluster (`data/`), the socket and the log. */
  dir: string;
  /** The unix socket folder (the `host` of a connection). */
  socketDir: string;
  port: number;
  /** The superuser (`postgres`, trust authentication on the socket). */
  user: string;
  /** `postgres://USER@/DB?host=SOCKETDIR&port=PORT`. */
  url(db: string): string;
  /** Creates an empty database, dropped at `t`'s teardown; returns its URL. */
  createDatabase(t: Teardown, name?: string): Promise<string>;
  /** Runs SQL as the superuser in `db` (default `postgres`). */
  query(sql: string, db?: string): Promise<pg.QueryResult>;
  /** Stops the server (fast shutdown) and removes its folder; safe to call twice. */
  stop(): void;
  /** Stops the server (fast shutdown: its connections are cut) and keeps its data: an outage. */
  halt(): void;
  /** Starts a halted server again, on the same socket and data. */
  resume(): void;
  /**
   * Stops every process of the server with SIGSTOP: a database host that vanished without closing
   * its connections (a cut cable). Connections stay open and unanswered, new ones are accepted by
   * the kernel and never greeted. thaw() (or the teardown) continues them.
   */
  freeze(): void;
  thaw(): void;
}

/** The newest PostgreSQL server of Debian's packages, or null when none is installed. */
export function postgresBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(root, versions[0]!, 'bin') : null;
}

/** Why the PostgreSQL tests cannot run here (a skip reason), or false. */
export function postgresMissing(): string | false {
  if (postgresBin() === null) return 'PostgreSQL server not installed (Debian package postgresql)';
  if (process.getuid?.() !== 0) return 'needs root to run PostgreSQL as the unprivileged user nobody';
  return false;
}

const USER = 'nobody';
let seq = 0;

/** Starts a PostgreSQL cluster for the tests of `t` (stopped and removed at its teardown). */
export async function startPostgres(t: Teardown, options: { port?: number } = {}): Promise<PostgresServer> {
  const bin = postgresBin();
  if (bin === null) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (install the postgresql package)');
  const dir = mkdtempSync(join(tmpdir(), 'pvd-pg-'));
  const { uid, gid } = idsOf(USER);
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  const port = options.port ?? 5432;
  const asUser = (cmd: string, args: string[]): string =>
    execFileSync('runuser', ['-u', USER, '--', join(bin, cmd), ...args], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  let stopped = false;
  let frozen: number[] = [];
  const signal = (pids: number[], sig: NodeJS.Signals): void => {
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {}
    }
  };
  const thaw = (): void => {
    signal(frozen, 'SIGCONT');
    frozen = [];
  };
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    thaw();
    try {
      if (existsSync(join(data, 'postmaster.pid'))) asUser('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w', '-t', '30']);
    } catch {
      try {
        asUser('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '10']);
      } catch {}
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const undo = onCleanup(stop);
  const opts = `-k ${dir} -p ${port} -c listen_addresses='' -c max_connections=200 -c shared_buffers=32MB`;
  try {
    asUser('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    asUser('pg_ctl', ['start', '-D', data, '-l', logFile, '-w', '-t', '60', '-o', opts]);
  } catch (err) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '';
    stop();
    undo();
    const e = err as { stderr?: string; message: string };
    throw new Error(`starting PostgreSQL in ${dir} failed: ${e.stderr || e.message}\n${log}`);
  }
  const url = (db: string): string => `postgres://postgres@/${db}?host=${encodeURIComponent(dir)}&port=${port}`;
  const query = async (sql: string, db = 'postgres'): Promise<pg.QueryResult> => {
    const client = new pg.Client({ connectionString: url(db) });
    await client.connect();
    try {
      return await client.query(sql);
    } finally {
      await client.end();
    }
  };
  const server: PostgresServer = {
    dir,
    socketDir: dir,
    port,
    user: 'postgres',
    url,
    query,
    stop: () => {
      stop();
      undo();
    },
    halt: () => {
      asUser('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w', '-t', '30']);
    },
    freeze: () => {
      const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      // The postmaster first (it forks no new backend then), then its children.
      signal([postmaster], 'SIGSTOP');
      const children = readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .map(Number)
        .filter((pid) => {
          try {
            return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]) === postmaster;
          } catch {
            return false;
          }
        });
      signal(children, 'SIGSTOP');
      frozen = [postmaster, ...children];
    },
    thaw,
    resume: () => {
      asUser('pg_ctl', ['start', '-D', data, '-l', logFile, '-w', '-t', '60', '-o', opts]);
    },
    async createDatabase(tt, name) {
      const db = name ?? `pvd_${process.pid}_${++seq}`;
      await query(`CREATE DATABASE ${db}`);
      tt.teardown(async () => {
        if (!stopped) await query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {});
      });
      return url(db);
    },
  };
  t.teardown(() => server.stop());
  return server;
}

function idsOf(user: string): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
  return { uid, gid };
}
