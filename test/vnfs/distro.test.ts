/**
 * `vnfs build NAME --distro debian:SUITE`: a real mmdebstrap run against the machine's Debian mirror
 * (the first run on a machine takes about 6 minutes; later runs copy the cached tree), checked as a
 * node would see it: systemd as /sbin/init, root locked, no documentation, its own kernel in /boot
 * and named by the capsule config. The recipe's pure parts (distro, mirror, shadow) are table-driven.
 */
import t from 'tap';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cliEnv } from '../cli/node-harness.js';
import {
  cachedTreeDir, lockRootInShadow, mirrorFromAptSources, parseDistro, parsePackages, recipeKey, type DistroRecipe,
} from '../../src/vnfs/distro.js';
import { readCapsuleConfig } from '../../src/vnfs/capsule.js';

t.test('--distro values: debian:SUITE, anything else is refused with the reason', async (t) => {
  t.same(parseDistro('debian:bookworm'), { family: 'debian', suite: 'bookworm' });
  t.same(parseDistro('debian:trixie'), { family: 'debian', suite: 'trixie' });
  t.throws(() => parseDistro('bookworm'), /--distro "bookworm": expected FAMILY:SUITE, e\.g\. debian:bookworm/);
  t.throws(() => parseDistro('ubuntu:jammy'), /unknown distribution ubuntu \(supported: debian:SUITE\)/);
  t.throws(() => parseDistro('debian:bookwurm'), /unknown Debian suite bookwurm \(known: .*bookworm/);
  t.same(parsePackages('htop, vim-tiny  openssh-server'), ['htop', 'vim-tiny', 'openssh-server']);
  t.throws(() => parsePackages('htop;rm'), /--packages: "htop;rm" is not a Debian package name/);
});

t.test('the mirror comes from the apt sources: deb822 and one-line, the suite asked first', async (t) => {
  const deb822 = [
    'Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n',
    'Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n',
    'Types: deb\n# a comment\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n',
  ].join('\n');
  t.equal(mirrorFromAptSources([{ name: 'debian.sources', text: deb822 }], 'bookworm'), 'http://mirror.example/debian');
  t.equal(mirrorFromAptSources([{ name: 'debian.sources', text: deb822 }], 'trixie'), 'http://mirror.example/debian', 'another suite: the same mirror');
  const list = '# deb http://old.example/debian bookworm main\ndeb [arch=amd64] http://list.example/debian bookworm main\n';
  t.equal(mirrorFromAptSources([{ name: 'sources.list', text: list }], 'bookworm'), 'http://list.example/debian');
  t.equal(mirrorFromAptSources([{ name: 'x.list.disabled', text: list }], 'bookworm'), null, 'disabled files are not read');
  t.equal(mirrorFromAptSources([], 'bookworm'), null);
});

t.test('root is locked in /etc/shadow, other lines untouched', async (t) => {
  t.equal(lockRootInShadow('root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n'), 'root:!*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n');
  t.equal(lockRootInShadow('root::19000::::::\n'), 'root:!*:19000::::::\n', 'an empty password is locked too');
  t.equal(lockRootInShadow('root:!$6$x:1::::::\n'), 'root:!$6$x:1::::::\n', 'already locked stays');
});

t.test('the cache key follows the suite, the package list and the mirror', async (t) => {
  const base: DistroRecipe = { distro: { family: 'debian', suite: 'bookworm' }, kernelPackage: 'linux-image-amd64', packages: [], mirror: 'http://a/debian' };
  t.equal(recipeKey(base), recipeKey({ ...base, packages: ['systemd'] }), 'a package already in the base changes nothing');
  t.not(recipeKey(base), recipeKey({ ...base, packages: ['htop'] }));
  t.not(recipeKey(base), recipeKey({ ...base, mirror: 'http://b/debian' }));
  t.not(recipeKey(base), recipeKey({ ...base, kernelPackage: 'linux-image-cloud-amd64' }));
  t.not(recipeKey(base), recipeKey({ ...base, distro: { family: 'debian', suite: 'trixie' } }));
  t.match(cachedTreeDir(base, '/c'), /^\/c\/vnfs\/debian-bookworm-[0-9a-f]{16}\/root$/);
});

t.test('bad options are one clear line and a non-zero exit', async (t) => {
  const env = cliEnv(t);
  for (const [args, re] of [
    [['--distro', 'ubuntu:jammy'], /unknown distribution ubuntu/],
    [['--distro', 'debian'], /expected FAMILY:SUITE/],
    [['--distro', 'debian:bookworm', '--busybox'], /give exactly one of --distro debian:SUITE, --from DIR or --busybox/],
    [['--busybox', '--packages', 'htop'], /--packages, --mirror and --kernel-package go with --distro/],
    [['--distro', 'debian:bookworm', '--mirror', 'ftp.example'], /--mirror ftp\.example: expected an http:\/\//],
  ] as Array<[string[], RegExp]>) {
    const r = await env.run(['vnfs', 'build', 'deb', ...args]);
    t.not(r.code, 0, `${args.join(' ')}: fails`);
    t.match(r.err, re, `${args.join(' ')}: says why`);
    t.notMatch(r.err, /\n\s+at /, 'without a stack trace');
    t.notOk(existsSync(join(env.dir, 'vnfs', 'deb', 'rootfs')), 'and makes no rootfs');
  }
});

t.test('vnfs build --distro debian:bookworm: systemd, root locked, no docs, its own kernel; again from the cache', async (t) => {
  const env = cliEnv(t);
  const first = await env.run(['vnfs', 'build', 'deb', '--distro', 'debian:bookworm', '--no-image']);
  t.equal(first.code, 0, `the build succeeds${first.code ? `: ${first.err}` : ''}`);
  const root = join(env.dir, 'vnfs', 'deb', 'rootfs');
  t.match(realpathSync(join(root, 'sbin/init')), /\/lib\/systemd\/systemd$/, '/sbin/init is systemd');
  t.ok(existsSync(join(root, 'lib/systemd/systemd-networkd')), 'systemd-networkd is there');
  t.match(readFileSync(join(root, 'etc/shadow'), 'utf8'), /^root:![^:]*:/m, 'root\'s password is locked');
  const docs = join(root, 'usr/share/doc');
  t.same(existsSync(docs) ? readdirSync(docs) : [], [], 'no /usr/share/doc content');
  t.same(existsSync(join(root, 'usr/share/man')) ? readdirSync(join(root, 'usr/share/man')) : [], [], 'no manual pages');
  t.same(readdirSync(join(root, 'var/lib/apt/lists')).filter((n) => n !== 'lock' && n !== 'partial'), [], 'no apt lists');
  t.equal(readdirSync(join(root, 'var/cache/apt')).filter((n) => n.endsWith('.bin') || n === 'archives' && readdirSync(join(root, 'var/cache/apt', n)).some((f) => f.endsWith('.deb'))).length, 0, 'no apt caches');
  t.equal(readFileSync(join(root, 'etc/machine-id'), 'utf8'), '', 'no machine-id baked in: each node gets its own');
  const vmlinuz = readdirSync(join(root, 'boot')).find((n) => n.startsWith('vmlinuz-'));
  t.ok(vmlinuz, `a kernel in /boot (${vmlinuz})`);
  t.ok(statSync(join(root, 'lib/modules', vmlinuz!.slice('vmlinuz-'.length))).isDirectory(), 'with its modules');
  const config = await readCapsuleConfig(env.dir, 'deb');
  t.equal(config.kernel, `/boot/${vmlinuz}`, 'config kernel: the VNFS\'s own');
  t.equal(config.initrd, null, 'config initrd: none (the image is the kexec initramfs)');
  t.same(readdirSync(join(root, 'boot')).filter((n) => n.startsWith('initrd')), [], 'no initrd in /boot making every image bigger');
  t.match(first.err, /debian bookworm: (cached tree|built in \d+ s)/, 'says where the tree came from');

  const again = await env.run(['vnfs', 'build', 'deb2', '--distro', 'debian:bookworm', '--no-image']);
  t.equal(again.code, 0, 'a second build succeeds');
  t.match(again.err, /debian bookworm: cached tree /, 'from the cache');
  t.notMatch(again.err, /downloading packages/, 'without fetching anything');
  t.ok(existsSync(join(env.dir, 'vnfs', 'deb2', 'rootfs', 'boot', vmlinuz!)), 'the same tree');
});
