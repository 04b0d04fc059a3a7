import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { exportCapsule, importCapsule, cloneCapsule } from '../../src/vnfs/capsule-ops.js';
import { readCapsuleConfig, vnfsExists } from '../../src/vnfs/index.js';
const REPO = new URL('../../', import.meta.url).pathname;

function tempdir(tt: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'pvd-capsule-'));
  tt.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function makeCapsule(statedir: string, name: string): void {
  const dir = join(statedir, 'vnfs', name);
  mkdirSync(join(dir, 'rootfs/bin'), { recursive: true });
  mkdirSync(join(dir, 'rootfs/etc/ro'), { recursive: true });
  mkdirSync(join(dir, 'nodescripts/init'), { recursive: true });
  writeFileSync(join(dir, 'config'), 'description: test capsule\ncompression: 1\n');
  writeFileSync(join(dir, 'rootfs/bin/busybox'), Buffer.alloc(300_000, 9));
  chmodSync(join(dir, 'rootfs/bin/busybox'), 0o4755);
  symlinkSync('busybox', join(dir, 'rootfs/bin/sh'));
  symlinkSync('/bin/busybox', join(dir, 'rootfs/bin/ls'));
  writeFileSync(join(dir, 'rootfs/etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  linkSync(join(dir, 'rootfs/etc/passwd'), join(dir, 'rootfs/etc/passwd.hard'));
  writeFileSync(join(dir, 'rootfs/etc/ro/file'), 'x');
  chmodSync(join(dir, 'rootfs/etc/ro'), 0o555);
  writeFileSync(join(dir, 'nodescripts/init/30-hello'), '#!/bin/sh\necho "echo hello from the capsule"\n');
  chmodSync(join(dir, 'nodescripts/init/30-hello'), 0o755);
}

t.test('export -> import -> export gives the same bytes, and the import restores the capsule', async (t) => {
  const statedir = tempdir(t);
  makeCapsule(statedir, 'base');
  const a = join(statedir, 'a.vnfs');
  const b = join(statedir, 'b.vnfs');
  await exportCapsule(statedir, 'base', a);
  const r = await importCapsule(statedir, a, { name: 'copy' });
  t.equal(r.name, 'copy');
  t.ok(vnfsExists(statedir, 'copy'));
  await exportCapsule(statedir, 'copy', b);
  t.same(readFileSync(b), readFileSync(a), 'byte-identical capsule files');
  const root = join(statedir, 'vnfs/copy/rootfs');
  t.equal(readlinkSync(join(root, 'bin/sh')), 'busybox');
  t.equal(readlinkSync(join(root, 'bin/ls')), '/bin/busybox', 'absolute link inside rootfs kept');
  t.equal(statSync(join(root, 'bin/busybox')).mode & 0o7777, 0o4755, 'setuid mode kept');
  t.equal(statSync(join(root, 'etc/passwd')).ino, statSync(join(root, 'etc/passwd.hard')).ino, 'hard link kept');
  t.equal(statSync(join(root, 'etc/ro')).mode & 0o777, 0o555, 'read-only directory restored last');
  t.same(r.links, ['nodescripts/init/vnfs/copy/30-hello'], 'capsule nodescripts linked');
  t.equal(readFileSync(join(statedir, 'nodescripts/init/vnfs/copy/30-hello'), 'utf8'), readFileSync(join(statedir, 'vnfs/base/nodescripts/init/30-hello'), 'utf8'));
  // GNU tar reads our capsules too
  const list = execFileSync('tar', ['-tzf', a], { encoding: 'utf8' });
  t.match(list, /^rootfs\/bin\/busybox$/m);
  await t.rejects(importCapsule(statedir, a, { name: 'copy' }), /vnfs copy exists already/);
  await cloneCapsule(statedir, 'copy', 'copy2');
  t.equal(readlinkSync(join(statedir, 'vnfs/copy2/rootfs/bin/sh')), 'busybox', 'clone copies the rootfs');
  t.ok(existsSync(join(statedir, 'nodescripts/init/vnfs/copy2/30-hello')), 'clone links its nodescripts');
});

t.test('a Perceus capsule (tar cjf of the capsule folder) imports', async (t) => {
  const statedir = tempdir(t);
  const src = join(statedir, 'perceus-src');
  mkdirSync(join(src, 'rootfs/sbin'), { recursive: true });
  mkdirSync(join(src, 'nodescripts/init'), { recursive: true });
  writeFileSync(join(src, 'rootfs/sbin/init'), '#!/bin/sh\n');
  writeFileSync(join(src, 'vmlinuz'), 'This file is only here for legacy Perceus compatibility... The real kernel\n');
  writeFileSync(join(src, 'vnfs.img'), '');
  writeFileSync(join(src, 'config'), [
    '#!/bin/sh', '# This config was created by Perceus:chroot2stateful.sh', 'LOADBIN=""', 'KEXEC="kexec"', 'COMPRESSION=high',
    'KERNEL="/boot/vmlinuz-2.6.18"', 'KERNEL_ARGS="ramdisk_blocksize=1024"', 'if [ -f "/etc/perceus/global-vnfs.config" ]; then', '   . /etc/perceus/global-vnfs.config', 'fi', '',
  ].join('\n'));
  writeFileSync(join(src, 'nodescripts/init/10-vnfsinit.sh'), '#!/bin/sh\necho echo perceus\n');
  chmodSync(join(src, 'nodescripts/init/10-vnfsinit.sh'), 0o755);
  const file = join(statedir, 'centos-5.1.vnfs');
  execFileSync('tar', ['cjf', file, '.'], { cwd: src });
  t.equal(readFileSync(file).subarray(0, 3).toString(), 'BZh', 'the fixture is bzip2');
  const r = await importCapsule(statedir, file);
  t.equal(r.name, 'centos-5.1', 'name from the file name');
  t.ok(r.perceus, 'recognised as Perceus');
  const config = await readCapsuleConfig(statedir, 'centos-5.1');
  t.equal(config.kernelArgs, 'ramdisk_blocksize=1024');
  t.equal(config.compression, 9, 'COMPRESSION=high -> gzip 9');
  t.match(readFileSync(join(statedir, 'vnfs/centos-5.1/config.perceus'), 'utf8'), /Perceus:chroot2stateful/, 'original config kept');
  t.ok(existsSync(join(statedir, 'vnfs/centos-5.1/rootfs/sbin/init')));
  t.equal(readlinkSync(join(statedir, 'nodescripts/init/vnfs/centos-5.1/10-vnfsinit.sh')), '../../../../vnfs/centos-5.1/nodescripts/init/10-vnfsinit.sh');
  // a tar.gz of NAME/ (one top folder) imports too, the folder stripped
  const top = join(statedir, 'top');
  mkdirSync(join(top, 'other/rootfs'), { recursive: true });
  writeFileSync(join(top, 'other/config'), 'description: wrapped\n');
  execFileSync('tar', ['czf', join(statedir, 'other.tar.gz'), 'other'], { cwd: top });
  const r2 = await importCapsule(statedir, join(statedir, 'other.tar.gz'));
  t.equal(r2.name, 'other');
  t.equal((await readCapsuleConfig(statedir, 'other')).description, 'wrapped');
});

type Entry = { header: tar.Header | (Partial<tar.Header> & { name: string }); body?: string };

async function writeTar(file: string, entries: Entry[]): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(file));
  for (const e of entries) {
    await new Promise<void>((res, rej) => pack.entry(e.header, e.body ?? '', (err) => (err ? rej(err) : res())));
  }
  pack.finalize();
  await done;
}

t.test('hostile archives are refused and leave nothing behind', async (t) => {
  const statedir = tempdir(t);
  const ok = { name: 'config', type: 'file' as const, mode: 0o644 };
  const cases: Array<[string, Entry[], RegExp]> = [
    ['dotdot', [{ header: ok, body: 'a: 1\n' }, { header: { name: 'rootfs/../../evil', type: 'file' }, body: 'x' }], /escapes the capsule/],
    ['absolute', [{ header: { name: '/tmp/evil', type: 'file' }, body: 'x' }], /absolute path/],
    ['symlink-out', [{ header: { name: 'rootfs/x', type: 'symlink', linkname: '../../../../etc' } }], /leaves the capsule/],
    ['symlink-out-of-rootfs', [{ header: { name: 'rootfs/x', type: 'symlink', linkname: '../config' } }], /leaves the capsule/],
    ['below-symlink', [{ header: { name: 'rootfs/d', type: 'symlink', linkname: 'sub' } }, { header: { name: 'rootfs/d/passwd', type: 'file' }, body: 'x' }], /below a symbolic link/],
    ['hardlink-out', [{ header: { name: 'rootfs/h', type: 'link', linkname: '/etc/passwd' } }], /absolute path|outside the capsule/],
    ['hardlink-missing', [{ header: { name: 'rootfs/h', type: 'link', linkname: 'rootfs/nothing' } }], /not a file earlier in the archive/],
    ['device-outside-rootfs', [{ header: { name: 'dev-null', type: 'character-device', devmajor: 1, devminor: 3 } }], /device node outside rootfs/],
    ['not-a-capsule', [{ header: { name: 'etc/passwd', type: 'file' }, body: 'x' }], /not a VNFS capsule/],
  ];
  for (const [name, entries, re] of cases) {
    const file = join(statedir, `${name}.vnfs`);
    await writeTar(file, entries);
    await t.rejects(importCapsule(statedir, file), re, name);
    t.notOk(existsSync(join(statedir, 'vnfs', name)), `${name}: no capsule created`);
  }
  t.notOk(existsSync('/tmp/evil'), 'nothing written outside');
  // a symlink (absolute: allowed inside rootfs/) followed by a file of the same name must not write through it
  const victim = join(statedir, 'victim');
  writeFileSync(victim, 'untouched\n');
  const through = join(statedir, 'through.vnfs');
  await writeTar(through, [
    { header: { name: 'config', type: 'file', mode: 0o644 }, body: 'description: x\n' },
    { header: { name: 'rootfs/a', type: 'symlink', linkname: victim } },
    { header: { name: 'rootfs/a', type: 'file', mode: 0o644 }, body: 'pwned\n' },
  ]);
  await importCapsule(statedir, through);
  t.equal(readFileSync(victim, 'utf8'), 'untouched\n', 'the symlink target outside was not written');
  t.equal(readFileSync(join(statedir, 'vnfs/through/rootfs/a'), 'utf8'), 'pwned\n', 'the later entry replaced the link');
  // truncated: a valid capsule cut in half
  makeCapsule(statedir, 'whole');
  const whole = join(statedir, 'whole.tar.gz');
  await exportCapsule(statedir, 'whole', whole);
  const cut = join(statedir, 'cut.vnfs');
  writeFileSync(cut, readFileSync(whole).subarray(0, Math.floor(statSync(whole).size / 2)));
  await t.rejects(importCapsule(statedir, cut), /^reading vnfs capsule cut\.vnfs: unexpected end/);
  const left = readdirSync(join(statedir, 'vnfs')).filter((n) => n !== 'whole' && n !== 'through');
  t.same(left, [], 'no half-imported capsule and no temp folder left');
});

t.test('vnfs delete refuses while nodes use it, unless --force', async (t) => {
  const statedir = tempdir(t);
  makeCapsule(statedir, 'demo');
  const cfg = join(statedir, 'provisiond.yaml');
  writeFileSync(cfg, `statedir: ${statedir}\n`);
  const cli = (...args: string[]): { status: number | null; err: string } => {
    const r = spawnSync(process.execPath, [join(REPO, 'bin/provisiond.js'), '-c', cfg, ...args], { encoding: 'utf8' });
    return { status: r.status, err: r.stderr };
  };
  t.equal(cli('node', 'add', '52:54:00:00:00:01', 'n0001', '--vnfs', 'demo').status, 0);
  const refused = cli('vnfs', 'delete', 'demo');
  t.equal(refused.status, 1, 'refused');
  t.match(refused.err, /vnfs demo is used by n0001/);
  t.ok(vnfsExists(statedir, 'demo'), 'still there');
  t.equal(cli('vnfs', 'delete', 'demo', '--force').status, 0);
  t.notOk(vnfsExists(statedir, 'demo'), 'deleted with --force');
});

t.test('vnfs build --from copies a chroot and builds its image; vnfs list shows it', async (t) => {
  const statedir = tempdir(t);
  const cfg = join(statedir, 'provisiond.yaml');
  writeFileSync(cfg, `statedir: ${statedir}\n`);
  const chroot = join(statedir, 'chroot');
  mkdirSync(join(chroot, 'sbin'), { recursive: true });
  mkdirSync(join(chroot, 'etc'), { recursive: true });
  writeFileSync(join(chroot, 'sbin/init'), '#!/bin/sh\n');
  chmodSync(join(chroot, 'sbin/init'), 0o755);
  writeFileSync(join(chroot, 'etc/os-release'), 'NAME=test\n');
  symlinkSync('../sbin/init', join(chroot, 'etc/init-link'));
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(REPO, 'bin/provisiond.js'), '-c', cfg, ...args], { encoding: 'utf8' });
  const built = cli('vnfs', 'build', 'compute', '--from', chroot);
  t.equal(built.status, 0, built.stderr);
  t.match(built.stdout, /vnfs\/compute\/image\.cpio\.gz +\d/);
  t.equal(readFileSync(join(statedir, 'vnfs/compute/rootfs/etc/os-release'), 'utf8'), 'NAME=test\n');
  t.equal(readlinkSync(join(statedir, 'vnfs/compute/rootfs/etc/init-link')), '../sbin/init');
  const listed = execFileSync('sh', ['-c', `gzip -dc '${join(statedir, 'vnfs/compute/image.cpio.gz')}' | cpio -t --quiet`], { encoding: 'utf8' });
  t.match(listed, /^etc\/os-release$/m, 'the image holds the chroot');
  const list = cli('vnfs', 'list');
  t.match(list.stdout, /^compute\t[\d.]+ (B|KiB)\t[^\t]+ ago\t0\t/m, 'listed with image size, age and node count');
  const bad = join(statedir, 'notroot');
  mkdirSync(bad);
  const refused = cli('vnfs', 'build', 'other', '--from', bad);
  t.equal(refused.status, 1);
  t.match(refused.stderr, /no sbin\/init in it/);
  t.equal(cli('vnfs', 'build', 'x').status, 1, 'one of --from or --busybox is required');
});
