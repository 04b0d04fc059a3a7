/**
 * The skeleton a kexec boot unpacks instead of the image (src/vnfs/skeleton.ts): on a tree laid out as
 * Debian's merged /usr, it holds the top level, /etc, the kernel and the paths the shipped nodescripts
 * test, through their symbolic links, with the image's own metadata; nothing else. buildImage writes it
 * only for a VNFS whose config names a kernel, and the freshness check adds a missing one.
 */
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { decodeArchive } from '../../src/protocol/cpio/newc.js';
import { buildImage, ensureImage, forgetImageChecks, SKELETON_FILE, SKELETON_SIDECAR, writeTreeImage } from '../../src/vnfs/index.js';
import { writeCapsuleConfig } from '../../src/vnfs/capsule.js';
import { writeSkeleton } from '../../src/vnfs/skeleton.js';
import { memoryLogger } from '../../src/log/logger.js';

function tempdir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'pvd-skel-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A small root shaped like a bookworm VNFS: /lib and /sbin links into /usr, systemd as init. */
function debianLikeTree(root: string): void {
  for (const d of ['usr/lib/systemd/system', 'usr/sbin', 'usr/bin', 'usr/share/big', 'etc/systemd/system', 'boot', 'var/log', 'tmp', 'proc']) mkdirSync(join(root, d), { recursive: true });
  for (const l of ['bin', 'lib', 'sbin']) symlinkSync(`usr/${l}`, join(root, l));
  writeFileSync(join(root, 'usr/lib/systemd/systemd'), '#!/bin/sh\n', { mode: 0o755 });
  symlinkSync('/lib/systemd/systemd', join(root, 'usr/sbin/init'));
  writeFileSync(join(root, 'usr/lib/systemd/system/systemd-networkd.service'), '[Unit]\n');
  writeFileSync(join(root, 'usr/lib/systemd/system/other.service'), '[Unit]\n');
  writeFileSync(join(root, 'usr/share/big/blob'), Buffer.alloc(2 << 20, 1));
  writeFileSync(join(root, 'usr/bin/tool'), 'tool\n', { mode: 0o755 });
  writeFileSync(join(root, 'etc/hostname'), 'template\n');
  writeFileSync(join(root, 'etc/systemd/system/x.service'), '[Unit]\n');
  writeFileSync(join(root, 'boot/vmlinuz-6.1.0-test-amd64'), 'kernel\n');
  writeFileSync(join(root, 'boot/initrd.img-6.1.0-test-amd64'), 'initrd\n');
  writeFileSync(join(root, 'var/log/old.log'), 'log\n');
}

const entries = (file: string) => decodeArchive(gunzipSync(readFileSync(file)));

t.test('the skeleton: top level, /etc, the kernel and the probed paths through their links, nothing else', async (t) => {
  const dir = tempdir(t);
  const root = join(dir, 'rootfs');
  debianLikeTree(root);
  const out = join(dir, SKELETON_FILE);
  writeFileSync(join(dir, 'secret'), 'of the master\n');
  const r = await writeSkeleton(root, out, { kernel: '/boot/vmlinuz-6.1.0-test-amd64', level: 1 });
  const escaped = await writeSkeleton(root, join(dir, 'escaped.cpio.gz'), { kernel: '../../secret', level: 1 });
  t.notOk(entries(join(dir, 'escaped.cpio.gz')).some((e) => e.data.toString().includes('of the master')), 'a kernel path with .. stays inside the root');
  t.ok(escaped.entries > 0);
  t.equal(r.sha256, createHash('sha256').update(readFileSync(out)).digest('hex'), 'sha256 of the file written');
  const got = entries(out);
  const names = got.map((e) => e.header.name);
  t.same(
    names,
    [
      'bin', 'boot', 'etc', 'lib', 'proc', 'sbin', 'tmp', 'usr', 'var', // the top level, in the image's order
      'etc/hostname', 'etc/systemd', 'etc/systemd/system', 'etc/systemd/system/x.service',
      'boot/vmlinuz-6.1.0-test-amd64',
      'usr/sbin', 'usr/sbin/init', 'usr/lib', 'usr/lib/systemd', 'usr/lib/systemd/systemd', // sbin/init -> /lib/systemd/systemd
      'usr/lib/systemd/system', 'usr/lib/systemd/system/systemd-networkd.service',
    ],
    'parents before children, each entry once',
  );
  t.notOk(names.includes('usr/share/big/blob'), 'no file the nodescripts do not look at');
  t.notOk(names.includes('boot/initrd.img-6.1.0-test-amd64'), 'not the initrd kexec does not use');
  t.equal(got.find((e) => e.header.name === 'sbin')?.data.toString(), 'usr/sbin', 'links as links');
  t.equal(got.find((e) => e.header.name === 'boot/vmlinuz-6.1.0-test-amd64')?.data.toString(), 'kernel\n', 'the kernel with its bytes');
  t.equal(got.find((e) => e.header.name === 'var')?.header.size, 0, 'a top-level folder without its contents');

  const image = join(dir, 'image.cpio.gz');
  await writeTreeImage(root, image, { level: 1 });
  const inImage = new Map(entries(image).map((e) => [e.header.name, e.header]));
  for (const e of got) {
    const i = inImage.get(e.header.name);
    t.same({ mode: e.header.mode, mtime: e.header.mtime, size: e.header.size }, { mode: i?.mode, mtime: i?.mtime, size: i?.size }, `${e.header.name}: the image's metadata`);
  }
});

t.test('buildImage writes a skeleton only for a VNFS with its own kernel; ensureImage adds a missing one', async (t) => {
  const statedir = tempdir(t);
  const dir = join(statedir, 'vnfs/deb');
  debianLikeTree(join(dir, 'rootfs'));
  const log = memoryLogger();
  await writeCapsuleConfig(dir, { kernel: null });
  await buildImage(statedir, 'deb', log);
  t.notOk(existsSync(join(dir, SKELETON_FILE)), 'no kernel in the config: no skeleton');

  await writeCapsuleConfig(dir, { kernel: '/boot/vmlinuz-6.1.0-test-amd64' });
  forgetImageChecks();
  await ensureImage(statedir, 'deb', log);
  t.ok(existsSync(join(dir, SKELETON_FILE)), 'the image is current, the missing skeleton is built');
  const sum = readFileSync(join(dir, SKELETON_SIDECAR), 'utf8');
  t.equal(sum, `${createHash('sha256').update(readFileSync(join(dir, SKELETON_FILE))).digest('hex')}  ${SKELETON_FILE}\n`, 'with its sha256sum sidecar');

  await writeCapsuleConfig(dir, { kernel: null });
  await buildImage(statedir, 'deb', log);
  t.notOk(existsSync(join(dir, SKELETON_FILE)) || existsSync(join(dir, SKELETON_SIDECAR)), 'the kernel dropped from the config: the skeleton goes');
});
