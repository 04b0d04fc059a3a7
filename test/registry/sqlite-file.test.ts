/**
 * What only the SQLite backend has to get right: the database file itself. An older schema is
 * upgraded in place; a corrupted, locked or too-new file gives one clear line; another process's
 * change (the CLI while the daemon runs) is seen at once.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parseConfig } from '../../src/config/load.js';
import { memoryLogger, silentLogger } from '../../src/log/logger.js';
import { RegistryUnavailableError } from '../../src/registry/errors.js';
import { databasePassword, openRegistry } from '../../src/registry/open.js';
import { migrate, SCHEMA_VERSION } from '../../src/registry/sqlite/migrations.js';
import { SqliteRegistry } from '../../src/registry/sqlite/registry.js';
import { defaults } from './contract.js';

function tempdir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-registry-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('openRegistry creates var/provisiond.db under the statedir', async (t) => {
  const dir = tempdir(t);
  const config = parseConfig('statedir: state\n', 'test.yaml', dir);
  const reg = await openRegistry(config, silentLogger());
  await reg.addNode({ name: 'n0001', nodeid: '52:54:00:00:00:01' });
  await reg.close();
  t.ok(existsSync(join(dir, 'state', 'var', 'provisiond.db')), 'the database is where the config says');
});

t.test('an unreachable postgres:// database is a clear error naming the file and key, without the password', async (t) => {
  const config = parseConfig('database: postgres://pvd:secret@127.0.0.1:1/provisiond\n', 'etc/provisiond.yaml', tempdir(t));
  const err = await openRegistry(config, silentLogger()).catch((e: unknown) => e);
  t.ok(err instanceof RegistryUnavailableError);
  t.match((err as Error).message, /^etc\/provisiond\.yaml: database: opening: registry database postgres:\/\/pvd:\*\*\*@127\.0\.0\.1:1\/provisiond is unreachable/);
  t.notMatch((err as Error).message, /secret/, 'the password of the URL is not printed');
});

t.test('databasePasswordFile: its first line is the password; a missing or empty file is refused with the key', async (t) => {
  const dir = tempdir(t);
  writeFileSync(join(dir, 'pgpass'), 's3cret\nignored\n');
  writeFileSync(join(dir, 'empty'), '');
  const conf = (file: string) => parseConfig(`database: postgres://pvd@db/provisiond\ndatabasePasswordFile: ${file}\n`, 'etc/provisiond.yaml', dir);
  t.equal(databasePassword(conf('pgpass')), 's3cret');
  t.throws(() => databasePassword(conf('nope')), { message: /^etc\/provisiond\.yaml: databasePasswordFile: cannot read .*nope/ });
  t.throws(() => databasePassword(conf('empty')), { message: /databasePasswordFile: .*empty is empty/ });
  t.equal(databasePassword(parseConfig('', 'x.yaml', dir)), null, 'none by default');
});

t.test('a database written by schema version 1 is upgraded in place, data kept', async (t) => {
  const path = join(tempdir(t), 'old.db');
  // Schema version 1 as it was released (written out here, not taken from the code under test).
  const old = new Database(path);
  old.exec(`
    CREATE TABLE groups (name TEXT PRIMARY KEY, vnfs TEXT, enabled INTEGER, debug INTEGER, desc TEXT);
    CREATE TABLE nodes (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, nodeid TEXT NOT NULL UNIQUE,
      grp TEXT, vnfs TEXT, enabled INTEGER, debug INTEGER, ipaddr TEXT, desc TEXT,
      state TEXT, lastcontact INTEGER, lastaddr TEXT);
    CREATE TABLE node_attrs (node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
      key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (node_id, key)) WITHOUT ROWID;
    INSERT INTO groups VALUES ('compute', 'rocky9', 1, 0, 'the compute nodes');
    INSERT INTO nodes VALUES (1, 'n0001', '52:54:00:00:00:01', 'compute', NULL, NULL, 2, '10.0.0.11', NULL, 'ready', 1700000000000, '10.0.0.11');
    INSERT INTO node_attrs VALUES (1, 'rack', '12');
    PRAGMA user_version = 1;
  `);
  old.close();
  const log = memoryLogger();
  const reg = SqliteRegistry.open({ path, logger: log });
  t.teardown(() => reg.close());
  t.match(await reg.getNode('n0001'), { group: 'compute', debug: 2, ipaddr: '10.0.0.11', state: 'ready', boot: null, attrs: { rack: '12' } });
  t.equal((await reg.resolve((await reg.getNode('n0001'))!, defaults)).vnfs, 'rocky9', 'group settings kept');
  await reg.putLease({ hwaddr: '52:54:00:00:00:01', address: '10.0.0.150', expires: Date.now() + 1000, state: 'bound' });
  await reg.updateNode('n0001', { boot: 'local' });
  t.equal((await reg.getNode('n0001'))?.boot, 'local', 'new columns usable');
  t.ok(log.lines.some((l) => l.msg === 'registry database schema upgraded' && l.from === 1 && l.to === SCHEMA_VERSION), 'the upgrade is logged');
  await reg.close();
  const check = new Database(path, { readonly: true });
  t.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  t.equal((check.prepare('SELECT count(*) AS n FROM leases').get() as { n: number }).n, 1);
  check.close();
});

t.test('schema 6: declined addresses stored under a made-up FF:FF MAC move to their own table', async (t) => {
  const path = join(tempdir(t), 'v5.db');
  const db = new Database(path);
  migrate(db, path, 5);
  const now = Date.now();
  const lease = db.prepare('INSERT INTO leases (hwaddr, address, expires, state) VALUES (?, ?, ?, ?)');
  lease.run('FF:FF:0A:00:00:64', '10.0.0.100', now + 60_000, 'declined');
  // Declined long ago, then leased once the decline expired: the lease is newer, the decline is dropped.
  lease.run('FF:FF:0A:00:00:65', '10.0.0.101', now - 600_000, 'declined');
  lease.run('52:54:00:00:00:01', '10.0.0.101', now + 3_600_000, 'bound');
  lease.run('52:54:00:00:00:02', '10.0.0.102', now + 3_600_000, 'bound');
  db.close();
  const reg = SqliteRegistry.open({ path, logger: silentLogger() });
  t.teardown(() => reg.close());
  t.same(await reg.listDeclined(), [{ address: '10.0.0.100', expires: now + 60_000 }], 'the live decline is kept, by address');
  t.same((await reg.listLeases()).map((l) => l.hwaddr).sort(), ['52:54:00:00:00:01', '52:54:00:00:00:02'], 'no lease of a made-up MAC is left');
  t.equal((await reg.getLeaseByAddress('10.0.0.101'))?.hwaddr, '52:54:00:00:00:01');
});

t.test('a database from a newer provisiond is refused, not touched', async (t) => {
  const path = join(tempdir(t), 'new.db');
  const db = new Database(path);
  db.pragma('user_version = 999');
  db.close();
  t.throws(() => SqliteRegistry.open({ path, logger: silentLogger() }), { name: 'RegistryUnavailableError', message: /schema version 999, newer than this provisiond knows/ });
});

t.test('a corrupted database gives one clear line', async (t) => {
  const path = join(tempdir(t), 'bad.db');
  writeFileSync(path, Buffer.alloc(8192, 0x5a));
  const err = (() => {
    try {
      SqliteRegistry.open({ path, logger: silentLogger() });
    } catch (e) {
      return e as Error;
    }
  })();
  t.ok(err instanceof RegistryUnavailableError, 'a RegistryUnavailableError, not a raw SQLite error');
  t.match(err?.message, new RegExp(`^opening: registry database ${path} is corrupted or not an SQLite database`));
  t.notOk(err?.message.includes('\n'), 'one line');
});

t.test('a database locked by another process gives one clear line after the busy timeout', async (t) => {
  const path = join(tempdir(t), 'locked.db');
  SqliteRegistry.open({ path, logger: silentLogger() }).close();
  const holder = new Database(path);
  holder.exec('BEGIN EXCLUSIVE');
  t.teardown(() => holder.close());
  const started = Date.now();
  const reg = (() => {
    try {
      return SqliteRegistry.open({ path, logger: silentLogger(), busyTimeout: 300 });
    } catch (e) {
      return e as Error;
    }
  })();
  t.ok(reg instanceof RegistryUnavailableError, 'refused');
  t.match((reg as Error).message, /registry database .*locked\.db is locked by another process/);
  t.ok(Date.now() - started < 5000, 'gave up after the busy timeout');
  holder.exec('ROLLBACK');
  // With the lock released, a write waiting on it goes through.
  const ok = SqliteRegistry.open({ path, logger: silentLogger(), busyTimeout: 300 });
  holder.exec('BEGIN IMMEDIATE');
  await t.rejects(ok.addNode({ name: 'n0001', nodeid: '52:54:00:00:00:01' }), { message: /^adding node n0001: registry database .* is locked by another process/ });
  holder.exec('ROLLBACK');
  await ok.addNode({ name: 'n0001', nodeid: '52:54:00:00:00:01' });
  await ok.close();
});

t.test("another process's changes are seen at once; batched writes survive them", async (t) => {
  const path = join(tempdir(t), 'shared.db');
  const daemon = SqliteRegistry.open({ path, logger: silentLogger(), flushInterval: 60_000 });
  t.teardown(() => daemon.close());
  await daemon.addNode({ name: 'n0001', nodeid: '52:54:00:00:00:01' });
  await daemon.recordContact('52:54:00:00:00:01', 'init', '10.0.0.5');
  const cli = SqliteRegistry.open({ path, logger: silentLogger() });
  await cli.addNode({ name: 'n0002', nodeid: '52:54:00:00:00:02' });
  await cli.updateNode('n0001', { vnfs: 'rocky9' });
  await cli.close();
  t.equal((await daemon.getNodeByNodeid('52:54:00:00:00:02'))?.name, 'n0002', 'a node added by the CLI is found by the daemon');
  t.match(await daemon.getNode('n0001'), { vnfs: 'rocky9', state: 'init', lastaddr: '10.0.0.5' }, 'the pending contact was not lost');
});

t.test('lookups never wait for the write lock: another process may hold it', async (t) => {
  const path = join(tempdir(t), 'busy.db');
  const daemon = SqliteRegistry.open({ path, logger: silentLogger(), flushInterval: 60_000, busyTimeout: 2000 });
  t.teardown(() => daemon.close());
  await daemon.addNode({ name: 'n0001', nodeid: '52:54:00:00:00:01' });
  await daemon.recordContact('52:54:00:00:00:01', 'ready', '10.0.0.5');
  const cli = new Database(path);
  t.teardown(() => cli.close());
  cli.prepare("UPDATE nodes SET vnfs = 'rocky9' WHERE name = 'n0001'").run();
  cli.exec('BEGIN IMMEDIATE'); // and keeps the write lock
  await new Promise((r) => setTimeout(r, 5));
  const started = Date.now();
  t.match(await daemon.getNodeByNodeid('52:54:00:00:00:01'), { vnfs: 'rocky9', state: 'ready', lastaddr: '10.0.0.5' }, 'the change is seen, the queued contact kept');
  t.ok(Date.now() - started < 500, 'without waiting for the lock');
  cli.exec('COMMIT');
  await daemon.flush();
  t.match(await daemon.getNode('n0001'), { vnfs: 'rocky9', state: 'ready' });
});

t.test("a long-running process follows another's renames, swaps, deletes, group, lease and decline changes", async (t) => {
  const path = join(tempdir(t), 'follow.db');
  const daemon = SqliteRegistry.open({ path, logger: silentLogger(), flushInterval: 60_000 });
  t.teardown(() => daemon.close());
  const cli = SqliteRegistry.open({ path, logger: silentLogger() });
  t.teardown(() => cli.close());
  const m = (i: number) => `52:54:00:00:00:0${i}`;
  for (let i = 1; i <= 4; i++) await daemon.addNode({ name: `n000${i}`, nodeid: m(i), ipaddr: `10.0.0.${i}` });
  await daemon.recordContact(m(1), 'ready', '10.0.0.1');
  // The admin, meanwhile: swaps two names, moves a fixed address, replaces a board, deletes a node...
  await cli.renameNode('n0001', 'tmp');
  await cli.renameNode('n0002', 'n0001');
  await cli.renameNode('tmp', 'n0002');
  await cli.updateNode('n0003', { ipaddr: null });
  await cli.updateNode('n0004', { ipaddr: '10.0.0.3', attrs: { rack: '9' } });
  await cli.replaceNodeid('n0004', '52:54:00:00:00:44');
  await cli.deleteNode('n0003');
  await cli.updateGroup('cluster', { vnfs: 'rocky9', attrs: { 'power.driver': 'ipmi' } });
  await cli.putLease({ hwaddr: m(2), address: '10.0.0.200', expires: Date.now() + 60_000, state: 'bound' });
  await cli.putDeclined({ address: '10.0.0.201', expires: Date.now() + 60_000 });
  await cli.flush();
  t.match(await daemon.getNodeByNodeid(m(1)), { name: 'n0002', state: 'ready' }, 'renamed, the queued contact kept');
  t.equal((await daemon.getNode('n0001'))?.nodeid, m(2), 'names swapped');
  t.equal((await daemon.getNodeByAddress('10.0.0.3'))?.name, 'n0004', 'the fixed address moved');
  t.equal(await daemon.getNode('n0003'), null, 'deleted');
  t.equal(await daemon.getNodeByNodeid(m(4)), null, 'the old board is gone');
  t.match(await daemon.getNodeByNodeid('52:54:00:00:00:44'), { name: 'n0004', attrs: { rack: '9' } });
  t.match(await daemon.getGroup('cluster'), { vnfs: 'rocky9', attrs: { 'power.driver': 'ipmi' } });
  t.equal((await daemon.getNodeByAddress('10.0.0.200'))?.name, 'n0001', 'a lease written elsewhere is seen');
  t.same((await daemon.listDeclined()).map((d) => d.address), ['10.0.0.201'], 'and a declined address');
  t.same((await daemon.listNodes()).map((n) => n.name).sort(), ['n0001', 'n0002', 'n0004']);
  // A big import elsewhere is more than the change log is worth: a full reload, same result.
  await cli.importNodes(Array.from({ length: 3000 }, (_, i) => ({ name: `x${i}`, nodeid: `52:54:00:01:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}` })));
  t.equal((await daemon.listNodes()).length, 3003);
  t.equal((await daemon.getNodeByNodeid('52:54:00:01:0b:b7'))?.name, 'x2999');
  await daemon.flush();
  t.match(await cli.getNode('n0002'), { state: 'ready', lastaddr: '10.0.0.1' }, 'and the contact reached the database');
});

t.test('batched writes survive a lock held past the busy timeout: logged, retried, not lost', async (t) => {
  const path = join(tempdir(t), 'retry.db');
  const log = memoryLogger();
  const daemon = SqliteRegistry.open({ path, logger: log, flushInterval: 20, busyTimeout: 50, maxQueued: 10 });
  t.teardown(() => daemon.close());
  await daemon.addNode({ name: 'n0001', nodeid: '52:54:00:00:00:01' });
  const holder = new Database(path);
  t.teardown(() => holder.close());
  holder.exec('BEGIN IMMEDIATE');
  for (let i = 0; i < 30; i++) await daemon.addEvent({ time: Date.now(), nodeid: '52:54:00:00:00:01', source: 'dhcp', stage: `s${i}`, msg: null, ok: true });
  // A change of state waits for its commit, and hears that it failed (it stays queued and is retried).
  await t.rejects(daemon.recordContact('52:54:00:00:00:01', 'init', '10.0.0.9'), /locked/, 'the change of state is not reported committed');
  t.equal((await daemon.getNodeByNodeid('52:54:00:00:00:01'))?.state, 'init', 'a packet handler is answered from memory meanwhile');
  await new Promise((r) => setTimeout(r, 200));
  t.ok(log.lines.some((l) => l.level === 'warn' && /will retry/.test(l.msg)), 'the failure is logged');
  t.equal(log.lines.filter((l) => /will retry/.test(l.msg)).length, 1, 'once, not per retry');
  holder.exec('ROLLBACK');
  await new Promise((r) => setTimeout(r, 200));
  const check = new Database(path, { readonly: true });
  t.equal((check.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n, 30, 'every event written once the lock is gone');
  t.equal((check.prepare("SELECT state FROM nodes WHERE name = 'n0001'").get() as { state: string }).state, 'init');
  check.close();
});

t.test('durability process: each lease is committed for other processes at once, and the log stays short', async (t) => {
  const path = join(tempdir(t), 'leases.db');
  const daemon = SqliteRegistry.open({ path, logger: silentLogger(), durability: 'process' });
  t.teardown(() => daemon.close());
  const cli = new Database(path, { readonly: true });
  t.teardown(() => cli.close());
  const lease = (i: number) => ({ hwaddr: `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, address: `10.1.${i >> 8}.${i & 255}`, expires: Date.now() + 3600_000, state: 'bound' as const });
  // The writer thread starts with the first batch (on a loaded machine, seconds later); one lease at
  // a time from then on, as at a low rate.
  const began = Date.now();
  for (let i = 0; i < 20 || daemon.writeStats.writer !== 'thread'; i++) {
    await daemon.putLease(lease(i));
    if (i >= 20) await new Promise((r) => setTimeout(r, 10));
    if (Date.now() - began > 20_000) return t.fail('the writer thread did not start within 20 s');
  }
  const count = () => (cli.prepare('SELECT count(*) AS n FROM leases').get() as { n: number }).n;
  let done = count();
  for (let i = done; i < 3000; i++) {
    await daemon.putLease(lease(i));
    if (i % 500 === 0) t.equal(count(), i + 1, `lease ${i + 1} is in the database once its write resolved`);
    done = i + 1;
  }
  t.equal(count(), done, 'every lease committed');
  // 3,000 one-lease commits log ~12,000 pages (~48 MB) unless something checkpoints (the writer
  // thread, between its batches; not the commits themselves).
  const wal = statSync(`${path}-wal`).size;
  t.ok(wal < 20 * 1024 * 1024, `the write-ahead log is checkpointed (${(wal / 1024 / 1024).toFixed(1)} MB)`);
});

t.test('the writer thread runs 5 nicer than the process: a busy machine serves the event loop first', async (t) => {
  const path = join(tempdir(t), 'nice.db');
  const reg = SqliteRegistry.open({ path, logger: silentLogger() });
  t.teardown(() => reg.close());
  const began = Date.now();
  for (let i = 0; reg.writeStats.writer !== 'thread'; i++) {
    await reg.putLease({ hwaddr: `02:00:00:00:10:${(i % 256).toString(16).padStart(2, '0')}`, address: `10.1.0.${i % 256}`, expires: Date.now() + 3600_000, state: 'bound' });
    await new Promise((r) => setTimeout(r, 20));
    if (Date.now() - began > 20_000) return t.fail('the writer thread did not start within 20 s');
  }
  // Field 19 of /proc/PID/task/TID/stat is the thread's nice value (proc(5)).
  const nice = (tid: string): number => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
  const own = nice(String(process.pid));
  const values = readdirSync('/proc/self/task').map(nice);
  t.equal(values.filter((v) => v === Math.min(19, own + 5)).length, 1, `one thread at nice ${Math.min(19, own + 5)}: the writer`);
  t.equal(values.filter((v) => v !== own && v !== Math.min(19, own + 5)).length, 0, 'the others at the process\'s');
});
