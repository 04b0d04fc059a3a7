/**
 * The daemon's lease journal (src/registry/sqlite/journal.ts): a lease, a deleted lease or a declined
 * address is acknowledged once its line is in the journal; a daemon killed before the tables hold it
 * loses nothing, because the next open applies the journal; a clean close leaves no journal behind;
 * a line cut short by the crash is ignored, one unreadable in the middle is skipped and said.
 */
import t from 'tap';
import Database from 'better-sqlite3';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger, silentLogger } from '../../src/log/logger.js';
import { SqliteRegistry } from '../../src/registry/sqlite/registry.js';
import { rootMissing, skipUnlessCi } from '../lib/gate.js';
import { TS_NODE_ARGS } from '../ts-child.js';

const dir = mkdtempSync(join(tmpdir(), 'pvd-lease-journal-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const journals = (name: string) => readdirSync(dir).filter((f) => f.startsWith(`${name}.leases.`));

function crashChild(path: string, durability: string, count: number): Promise<{ out: string; signal: string | null }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...TS_NODE_ARGS, join(import.meta.dirname, 'fixtures', 'journal-crash.ts'), path, durability, String(count)], { timeout: 60_000 }, (err, out) => {
      resolve({ out, signal: (err as { signal?: string } | null)?.signal ?? null });
    });
  });
}

function rows(path: string) {
  const db = new Database(path, { readonly: true });
  try {
    return {
      leases: new Map(db.prepare<[], { hwaddr: string; address: string; expires: number; hostname: string | null }>('SELECT hwaddr, address, expires, hostname FROM leases').all().map((r) => [r.hwaddr, r] as const)),
      declined: db.prepare('SELECT address FROM declined').pluck().all() as string[],
      applied: db.prepare('SELECT applied FROM lease_journal').pluck().get() as number,
    };
  } finally {
    db.close();
  }
}

// fsync-pool: fsync with the syncs on libuv's thread pool, as a slow disk has them (journal.ts, INLINE_SYNC_MS).
for (const mode of ['fsync', 'fsync-pool', 'process'] as const) {
  const durability = mode === 'process' ? 'process' : 'fsync';
  t.test(`kill -9 before any batch (durability ${mode}): the next open applies the journal`, async (t) => {
    const name = `crash-${mode}.db`;
    const path = join(dir, name);
    const { out, signal } = await crashChild(path, mode, 500);
    t.equal(signal, 'SIGKILL', 'the writer died by SIGKILL');
    const told = JSON.parse(out) as { acked: number; renewed: number };
    t.equal(told.acked, 500, 'after 500 leases were acknowledged');
    t.equal(rows(path).leases.size, 0, 'none reached the tables before the kill (no batch ran)');
    t.ok(journals(name).length >= 1, 'they are in the journal');

    const reg = SqliteRegistry.open({ path, logger: silentLogger(), leaseJournal: true, durability });
    t.equal((await reg.listLeases()).length, 499, 'the reopened registry holds every acknowledged lease (500, one deleted)');
    await reg.close();
    const after = rows(path);
    t.equal(after.leases.size, 499, 'in the tables');
    t.equal(after.leases.get('52:54:00:7A:00:00')?.expires, told.renewed, 'the renewal, written after the first lease, wins');
    t.equal(after.leases.get('52:54:00:7A:00:00')?.hostname, 'renewed');
    t.notOk(after.leases.has('52:54:00:7A:00:01'), 'the deleted lease stays deleted');
    t.same(after.declined, ['10.77.250.1'], 'the declined address is kept');
    t.same(journals(name), [], 'the journal is gone once applied and closed');
  });
}

for (const durability of ['fsync', 'process'] as const) {
  t.test(`a clean close leaves no journal, and reopening applies nothing twice (durability ${durability})`, async (t) => {
    const name = `clean-${durability}.db`;
    const path = join(dir, name);
    const reg = SqliteRegistry.open({ path, logger: silentLogger(), leaseJournal: true, durability, flushInterval: 20 });
    const expires = Date.now() + 60_000;
    // Over 1 MiB of lines, in group commits of 16: the journal starts new files, and drops those
    // a synced batch holds.
    for (let i = 0; i < 12_000; i += 16) {
      await Promise.all(
        Array.from({ length: 16 }, (_, k) => {
          const j = i + k;
          const hwaddr = `52:54:00:7b:${((j >> 8) & 255).toString(16).padStart(2, '0')}:${(j & 255).toString(16).padStart(2, '0')}`;
          return reg.putLease({ hwaddr, address: `10.78.${(j >> 8) & 255}.${j & 255}`, expires, state: 'bound', hostname: `host-with-a-longish-name-${j}` });
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 1100));
    await reg.putLease({ hwaddr: '52:54:00:7c:00:00', address: '10.79.0.0', expires, state: 'bound', hostname: null });
    await new Promise((r) => setTimeout(r, 200));
    t.ok(journals(name).length <= 2, `while it runs, the journal files the tables hold are deleted (${journals(name).length} left)`);
    await reg.close();
    t.same(journals(name), [], 'no journal after a clean close');
    t.equal(rows(path).leases.size, 12_001, 'every lease is in the tables');
    t.equal(rows(path).applied > 0, true, 'the tables record the last journal line they hold');
    // A lease deleted by another process after the close is not brought back by an old journal line.
    const db = new Database(path);
    db.prepare("DELETE FROM leases WHERE hwaddr = '52:54:00:7B:00:05'").run();
    db.close();
    const again = SqliteRegistry.open({ path, logger: silentLogger(), leaseJournal: true, durability });
    t.equal((await again.listLeases()).length, 12_000);
    await again.close();
  });
}

t.test('a line cut short by the crash is ignored; an unreadable one in the middle is skipped and logged', async (t) => {
  const name = 'torn.db';
  const path = join(dir, name);
  const { signal } = await crashChild(path, 'process', 40);
  t.equal(signal, 'SIGKILL');
  const files = journals(name).sort();
  const last = join(dir, files.at(-1)!);
  // Garbage in the middle (an earlier file), and the start of a line the crash cut short at the end.
  const first = join(dir, files[0]!);
  const text = readFileSync(first, 'utf8').split('\n');
  text.splice(1, 0, '{"seq":');
  writeFileSync(first, text.join('\n'));
  // Lines end where the zeros the file was created with begin: the cut line goes there.
  const tail = readFileSync(last);
  writeFileSync(last, Buffer.concat([tail.subarray(0, tail.indexOf(0)), Buffer.from('{"seq":999999,"leases":[["52:54:00:7A:FF:FF","10.77'), tail.subarray(tail.indexOf(0) + 40)]));
  const log = memoryLogger();
  const reg = SqliteRegistry.open({ path, logger: log, leaseJournal: true });
  const leases = await reg.listLeases();
  await reg.close();
  t.equal(leases.length, 39, 'every complete line is applied (40 leases, one deleted)');
  t.notOk(leases.some((l) => l.hwaddr === '52:54:00:7A:FF:FF'), 'the cut line is not');
  const warned = log.lines.filter((l) => l.level === 'warn').map((l) => [l.msg, l.skipped]);
  t.same(warned, [['lease journal: unreadable lines skipped', 1]], 'the unreadable line in the middle is said, the cut one is not');
});

t.test('fsync: a disk slower than the limit has its syncs moved to the thread pool, said in the log, and they still hold', async (t) => {
  const path = join(dir, 'slow.db');
  const log = memoryLogger();
  // A limit of a nanosecond: every disk is slower than that, so the first sync (made on the event
  // loop and timed) moves the rest to the thread pool, where they stay.
  const reg = SqliteRegistry.open({ path, logger: log, leaseJournal: true, durability: 'fsync', flushInterval: 3_600_000, journalInlineSyncMs: 1e-6 });
  const expires = Date.now() + 60_000;
  for (let i = 0; i < 150; i++) await reg.putLease({ hwaddr: `52:54:00:7e:00:${(i & 255).toString(16).padStart(2, '0')}`, address: `10.81.0.${i}`, expires, state: 'bound' });
  const moved = log.lines.filter((l) => l.msg.startsWith('lease journal: syncs now made on the'));
  t.equal(moved.length, 1, 'the move is logged once (the syncs on the thread pool, timed too, are as slow)');
  t.match(moved[0], { level: 'info', place: 'thread-pool', msg: /thread pool \(the disk is slow\)/, journal: /slow\.db\.leases\.\d+$/ }, 'naming the journal and the place');
  t.equal(rows(path).leases.size, 0, 'no batch reached the tables');
  t.ok(journals('slow.db').length >= 1, 'every lease acknowledged is in the journal');
  await reg.close();
  t.equal(rows(path).leases.size, 150, 'and in the tables after a clean close');
});

t.test('a full disk withholds the acknowledgement, and loses nothing once there is room', { skip: skipUnlessCi(rootMissing('a small tmpfs of its own')) }, async (t) => {
  // A 4 MiB filesystem of the test's own: the database and a first journal file fit; a filler then
  // takes what is left, so that the journal cannot start its next file.
  const mnt = mkdtempSync(join(tmpdir(), 'pvd-journal-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
  t.teardown(() => {
    execFileSync('umount', ['-l', mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  const path = join(mnt, 'full.db');
  const log = memoryLogger();
  const reg = SqliteRegistry.open({ path, logger: log, leaseJournal: true, durability: 'process' });
  const expires = Date.now() + 60_000;
  const lease = (i: number) => ({ hwaddr: `52:54:00:7d:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, address: `10.80.${(i >> 8) & 255}.${i & 255}`, expires, state: 'bound' as const, hostname: `a-hostname-long-enough-to-fill-the-journal-${i}` });
  await reg.putLease(lease(0));
  await reg.flush();
  const filler = join(mnt, 'filler');
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' });
  } catch {
    // dd stops when the filesystem is full: that is the point.
  }
  let refused: Error | null = null;
  let i = 1;
  for (; i < 20_000 && refused === null; i++) {
    await reg.putLease(lease(i)).catch((err: Error) => (refused = err));
  }
  t.ok(refused, `a write was refused once the journal needed a new file (after ${i - 1} leases)`);
  t.match(String((refused as Error | null)?.message), /lease journal .*full\.db\.leases\.\d+: .*ENOSPC/, 'the error names the journal file and the full disk');
  t.ok(log.lines.some((l) => l.level === 'warn' && l.msg === 'lease journal: writing failed; leases are not acknowledged until it works'), 'and it is logged');
  const failed = i - 1;

  // A close while the disk is still full returns, saying why the tables could not take the last
  // batch; the journal files are kept for the next open.
  const closed = await Promise.race([
    reg.close().then(
      () => 'closed',
      (err: Error) => err.message,
    ),
    new Promise<string>((r) => setTimeout(() => r('still closing after 15 s'), 15_000)),
  ]);
  t.match(closed, /^(closed|.*disk is full.*)$/, `a close while the disk is full returns (${closed})`);
  rmSync(filler);
  const again = SqliteRegistry.open({ path, logger: log, leaseJournal: true, durability: 'process' });
  await again.putLease(lease(failed + 1));
  t.pass('with room again, the next write is acknowledged');
  await again.close();
  const db = new Database(path, { readonly: true });
  const held = new Set(db.prepare('SELECT hwaddr FROM leases').pluck().all() as string[]);
  db.close();
  const acked = [...Array.from({ length: failed }, (_, k) => k), failed + 1].map((k) => lease(k).hwaddr.toUpperCase());
  t.same(acked.filter((mac) => !held.has(mac)), [], `every acknowledged lease (${acked.length}) is in the tables after the reopen and close`);
  t.same(readdirSync(mnt).filter((f) => f.includes('.leases.')), [], 'and no journal file is left');
});
