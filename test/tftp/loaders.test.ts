import t from 'tap';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findSystemLoaders, resolveLoader } from '../../src/boot/loaders.js';

const tmp = mkdtempSync(join(tmpdir(), 'pvd-tftp-loaders-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const root = join(tmp, 'tftp');
const sys = join(tmp, 'sys');
mkdirSync(join(root, 'sub'), { recursive: true });
mkdirSync(sys);
writeFileSync(join(sys, 'undionly.kpxe'), 'packaged');
writeFileSync(join(sys, 'ipxe-x86_64.efi'), 'fedora-named');
writeFileSync(join(sys, 'menu.c32'), 'com32');
writeFileSync(join(tmp, 'secret'), 'outside');
writeFileSync(join(root, 'sub', 'vmlinuz'), 'kernel');
symlinkSync(join(tmp, 'secret'), join(root, 'escape'));

t.test('packaged loader found without copying; the admin file wins', async (t) => {
  const a = await resolveLoader('undionly.kpxe', { root, dirs: [sys] });
  t.equal(a?.source, 'system');
  t.equal(a?.path, join(sys, 'undionly.kpxe'));
  t.equal(a?.size, 8);
  writeFileSync(join(root, 'undionly.kpxe'), 'admin build');
  const b = await resolveLoader('undionly.kpxe', { root, dirs: [sys] });
  t.equal(b?.source, 'root');
  t.equal(b?.size, 11);
});

t.test('distribution aliases and com32 modules', async (t) => {
  t.equal((await resolveLoader('ipxe.efi', { root, dirs: [sys] }))?.path, join(sys, 'ipxe-x86_64.efi'));
  t.equal((await resolveLoader('menu.c32', { root, dirs: [sys] }))?.path, join(sys, 'menu.c32'));
  t.equal(await resolveLoader('snponly.efi', { root, dirs: [sys] }), null);
});

t.test('files under the root by relative path; unsafe names refused', async (t) => {
  t.equal((await resolveLoader('sub/vmlinuz', { root, dirs: [sys] }))?.source, 'root');
  for (const bad of ['../secret', '/etc/passwd', 'sub\\vmlinuz', 'escape', 'a\0b', 'sub/../../secret', '']) {
    t.equal(await resolveLoader(bad, { root, dirs: [sys] }), null, `refused ${JSON.stringify(bad)}`);
  }
  // a packaged loader name never reaches into subdirectories of the system dirs
  t.equal(await resolveLoader('x/undionly.kpxe', { root, dirs: [sys] }), null);
});

t.test('the Debian ipxe package is found', { skip: existsSync('/usr/lib/ipxe/undionly.kpxe') ? false : 'Debian package ipxe not installed' }, async (t) => {
  const found = await findSystemLoaders();
  t.equal(found.get('undionly.kpxe'), '/usr/lib/ipxe/undionly.kpxe');
  t.ok(found.get('ipxe.efi'), 'ipxe.efi found (a symlink to /boot on Debian)');
  t.equal(found.get('snponly.efi'), '/usr/lib/ipxe/snponly.efi');
});
