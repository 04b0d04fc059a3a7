import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, linkSync, chmodSync, utimesSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { decodeArchive, encodeHeader, S_IFREG } from '../../src/protocol/cpio/newc.js';
import { ensureImage, forgetImageChecks, vnfsExists, writeTreeImage } from '../../src/vnfs/index.js';
import { memoryLogger } from '../../src/log/logger.js';

function tempdir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'pvd-vnfs-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function makeTree(root: string): void {
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'etc/empty'), { recursive: true });
  writeFileSync(join(root, 'etc/hostname'), 'node\n');
  writeFileSync(join(root, 'bin/tool'), Buffer.alloc(5 * 1024 * 1024 + 3, 7)); // spans gzip blocks
  chmodSync(join(root, 'bin/tool'), 0o755);
  writeFileSync(join(root, 'etc/odd name ü'), 'x');
  symlinkSync('tool', join(root, 'bin/link'));
  linkSync(join(root, 'etc/hostname'), join(root, 'etc/hostname.hard'));
  writeFileSync(join(root, 'etc/empty-file'), '');
}

t.test('the cpio image is read back by GNU cpio and restores the tree', async (t) => {
  const dir = tempdir(t);
  const root = join(dir, 'rootfs');
  makeTree(root);
  const out = join(dir, 'image.cpio.gz');
  const r = await writeTreeImage(root, out, { level: 1 });
  t.equal(r.sha256, createHash('sha256').update(readFileSync(out)).digest('hex'), 'sha256 is of the file written');
  const list = execFileSync('sh', ['-c', `gzip -dc '${out}' | cpio -t --quiet`], { encoding: 'utf8' }).trim().split('\n');
  t.same(list, ['bin', 'bin/link', 'bin/tool', 'etc', 'etc/empty', 'etc/empty-file', 'etc/hostname', 'etc/hostname.hard', 'etc/odd name ü'], 'GNU cpio -t lists every entry, sorted');
  const ex = join(dir, 'ex');
  mkdirSync(ex);
  execFileSync('sh', ['-c', `gzip -dc '${out}' | cpio -idm --quiet`], { cwd: ex });
  t.same(readFileSync(join(ex, 'bin/tool')), readFileSync(join(root, 'bin/tool')), 'file data intact');
  t.equal(statSync(join(ex, 'bin/tool')).mode & 0o777, 0o755, 'mode kept');
  t.equal(execFileSync('readlink', [join(ex, 'bin/link')], { encoding: 'utf8' }).trim(), 'tool', 'symlink kept');
  t.equal(statSync(join(ex, 'etc/hostname')).ino, statSync(join(ex, 'etc/hostname.hard')).ino, 'hard link restored as a link');
  t.equal(readFileSync(join(ex, 'etc/hostname.hard'), 'utf8'), 'node\n');
  t.equal(statSync(join(ex, 'etc/hostname')).mtimeMs, Math.floor(statSync(join(root, 'etc/hostname')).mtimeMs / 1000) * 1000, 'mtime kept');
  // busybox unpacks it too (that is what the node runs)
  const bb = join(dir, 'bb');
  mkdirSync(bb);
  execFileSync('sh', ['-c', `busybox zcat '${out}' | busybox cpio -id 2>/dev/null`], { cwd: bb });
  t.same(readFileSync(join(bb, 'bin/tool')), readFileSync(join(root, 'bin/tool')), 'busybox zcat | cpio -id restores the data');
  t.equal(statSync(join(bb, 'etc/hostname')).ino, statSync(join(bb, 'etc/hostname.hard')).ino, 'busybox restores the hard link');
});

t.test('the same tree gives the same image, byte for byte', async (t) => {
  const dir = tempdir(t);
  const root = join(dir, 'rootfs');
  makeTree(root);
  const a = await writeTreeImage(root, join(dir, 'a.gz'), { level: 6 });
  const b = await writeTreeImage(root, join(dir, 'b.gz'), { level: 6, parallel: 1 });
  t.equal(a.sha256, b.sha256);
  t.equal(a.fingerprint, b.fingerprint);
});

t.test('codec: headers round trip and out-of-range values are refused', async (t) => {
  const h = { name: 'x', ino: 1, mode: S_IFREG | 0o644, uid: 0, gid: 0, nlink: 1, mtime: 5, size: 0, devmajor: 0, devminor: 0, rdevmajor: 0, rdevminor: 0 };
  const buf = Buffer.concat([encodeHeader(h), encodeHeader({ ...h, name: 'TRAILER!!!' })]);
  t.same(decodeArchive(buf)[0]!.header, h);
  t.throws(() => encodeHeader({ ...h, size: 2 ** 32 }), /size 4294967296 does not fit/);
  t.throws(() => encodeHeader({ ...h, name: 'a\0b' }), /NUL/);
  t.throws(() => decodeArchive(Buffer.from('070707'.padEnd(120, 'x'))), /bad magic/);
});

t.test('ensureImage builds once, rebuilds only when rootfs changes', async (t) => {
  const statedir = tempdir(t);
  const cap = join(statedir, 'vnfs/demo');
  mkdirSync(join(cap, 'rootfs/etc'), { recursive: true });
  writeFileSync(join(cap, 'rootfs/etc/motd'), 'one\n');
  t.ok(vnfsExists(statedir, 'demo'));
  t.notOk(vnfsExists(statedir, 'nope'));
  t.notOk(vnfsExists(statedir, '../vnfs/demo'));
  const log = memoryLogger();
  forgetImageChecks();
  const first = await ensureImage(statedir, 'demo', log);
  t.equal(first.path, join(cap, 'image.cpio.gz'));
  t.equal(readFileSync(join(cap, 'image.cpio.gz.sha256'), 'utf8'), `${first.sha256}  image.cpio.gz\n`, 'sha256sum-format sidecar');
  const builtAt = statSync(first.path).mtimeMs;
  const builds = (): number => log.lines.filter((l) => l.msg === 'vnfs image built').length;
  forgetImageChecks();
  const again = await ensureImage(statedir, 'demo', log);
  t.equal(again.sha256, first.sha256);
  t.equal(builds(), 1, 'not rebuilt when nothing changed');
  t.equal(statSync(first.path).mtimeMs, builtAt, 'image file untouched');
  // concurrent callers share one build
  writeFileSync(join(cap, 'rootfs/etc/motd'), 'two\n');
  utimesSync(join(cap, 'rootfs/etc/motd'), new Date(), new Date(Date.now() + 5000));
  forgetImageChecks();
  const many = await Promise.all(Array.from({ length: 20 }, () => ensureImage(statedir, 'demo', log)));
  t.equal(builds(), 2, 'rebuilt once after rootfs changed, even with 20 callers');
  t.ok(many.every((m) => m.sha256 === many[0]!.sha256));
  t.not(many[0]!.sha256, first.sha256);
  const files = decodeArchive(gunzipSync(readFileSync(first.path)));
  t.equal(files.find((f) => f.header.name === 'etc/motd')!.data.toString(), 'two\n', 'new content in the image');
  // an image only capsule (no rootfs) is served as is
  rmSync(join(cap, 'rootfs'), { recursive: true });
  forgetImageChecks();
  t.equal((await ensureImage(statedir, 'demo', log)).sha256, many[0]!.sha256);
  await t.rejects(ensureImage(statedir, 'missing', log), /vnfs missing: no rootfs and no image/);
});

t.test('every gzip member of the image ends between two cpio entries (the kernel refuses it otherwise)', async (t) => {
  const dir = tempdir(t);
  const root = join(dir, 'rootfs');
  makeTree(root); // a 5 MiB file: larger than a block
  mkdirSync(join(root, 'many'));
  for (let i = 0; i < 40; i++) writeFileSync(join(root, 'many', `f${i}`), Buffer.alloc(300_000 + i * 1_001, i)); // 12 MiB in odd sizes
  const out = join(dir, 'image.cpio.gz');
  await writeTreeImage(root, out, { level: 1, parallel: 2 });
  const gz = readFileSync(out);
  // Members start with the header Node's gzip writes (no name, mtime 0, any XFL, OS unix).
  const header = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00]);
  const starts: number[] = [];
  for (let at = gz.indexOf(header); at !== -1; at = gz.indexOf(header, at + 1)) if (gz[at + 9] === 0x03) starts.push(at);
  t.ok(starts.length >= 3, `the image has several members (${starts.length})`);
  const ends: number[] = [];
  let total = 0;
  for (let i = 0; i < starts.length; i++) {
    total += gunzipSync(gz.subarray(starts[i], starts[i + 1] ?? gz.length)).length;
    ends.push(total);
  }
  const archive = gunzipSync(gz);
  t.equal(total, archive.length, 'the members are the whole archive');
  // Where each newc entry starts (and the archive's end).
  const entryStarts = new Set<number>();
  for (let off = 0; off < archive.length;) {
    entryStarts.add(off);
    const field = (i: number): number => parseInt(archive.toString('latin1', off + 6 + i * 8, off + 14 + i * 8), 16);
    const name = archive.toString('latin1', off + 110, off + 110 + field(11) - 1);
    off = Math.ceil((off + 110 + field(11)) / 4) * 4 + Math.ceil(field(6) / 4) * 4;
    if (name === 'TRAILER!!!') break;
  }
  entryStarts.add(archive.length);
  for (const end of ends.slice(0, -1)) t.ok(entryStarts.has(end), `a member ends at ${end}, where an entry starts`);
  t.equal(ends.at(-1), archive.length, 'the last member ends with the archive');
});
