/**
 * Container images as VNFS: `vnfs import oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`,
 * `docker-archive:FILE[:TAG]`. Two sources of images: ones this test writes byte by byte (known
 * layers with whiteouts, an opaque folder, hard links across layers, owners, a setuid file, gzip
 * and zstd layers), and ones made by real tools from Debian: umoci builds an image from a changed
 * rootfs (its own whiteouts) and skopeo converts it to the two archive formats. The imported rootfs
 * must equal, entry by entry, the tree the test expects, and umoci's own unpack of the same image.
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, rmdirSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { importImage, parseImageSource, referenceMatches } from '../../src/vnfs/oci.js';
import { vnfsExists } from '../../src/vnfs/index.js';

const REPO = new URL('../../', import.meta.url).pathname;
const isRoot = process.getuid?.() === 0;
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

function tempdir(tt: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'pvd-oci-'));
  tt.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

interface Entry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  mode?: number;
  uid?: number;
  gid?: number;
  content?: string;
  linkname?: string;
}

const MTIME = new Date('2026-01-02T03:04:05Z');

/** A tar archive of `entries`, in order. */
async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c) => chunks.push(c as Buffer));
  const ended = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = { name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: MTIME, linkname: e.linkname };
    await new Promise<void>((resolve, reject) => {
      if (type === 'file') pack.entry({ ...header, size: Buffer.byteLength(e.content ?? '') }, e.content ?? '', (err) => (err ? reject(err) : resolve()));
      else pack.entry(header, (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

const LAYER1: Entry[] = [
  { name: 'etc/', type: 'directory' },
  { name: 'etc/os-release', content: 'NAME=one\n' },
  { name: 'etc/secret', content: 'munge key\n', mode: 0o600, uid: 1000, gid: 1000 },
  { name: 'usr/', type: 'directory' },
  { name: 'usr/bin/', type: 'directory' },
  { name: 'usr/bin/tool', content: '#!/bin/sh\necho tool\n', mode: 0o755 },
  { name: 'usr/bin/tool2', type: 'link', linkname: 'usr/bin/tool' },
  { name: 'usr/bin/su', content: 'setuid\n', mode: 0o4755 },
  { name: 'bin', type: 'symlink', linkname: 'usr/bin' },
  { name: 'sbin/', type: 'directory' },
  { name: 'sbin/init', type: 'symlink', linkname: '/usr/bin/tool' },
  { name: 'opt/stuff/', type: 'directory', mode: 0o750 },
  { name: 'opt/stuff/a', content: 'a\n' },
  { name: 'opt/stuff/sub/b', content: 'b\n' },
  { name: 'var/cache/apt/pkgcache.bin', content: 'cache\n' },
  { name: 'home/ro/', type: 'directory', mode: 0o555 },
  { name: 'home/ro/file', content: 'in a read-only folder\n' },
];
const LAYER2: Entry[] = [
  { name: 'etc/.wh.secret' },
  { name: 'etc/os-release', content: 'NAME=two\n' },
  { name: 'etc/added', content: 'added in layer 2\n', uid: 7, gid: 8 },
  { name: 'opt/stuff/c', content: 'c\n' },
  { name: 'opt/stuff/.wh..wh..opq' },
  { name: 'var/.wh.cache' },
];
const LAYER3: Entry[] = [
  { name: 'usr/bin/tool3', type: 'link', linkname: 'usr/bin/tool' },
  { name: 'usr/bin/late', content: 'late\n', mode: 0o700 },
];

/** What the three layers make, as `describe()` prints a tree. */
const EXPECTED: Record<string, string> = {
  bin: 'l usr/bin',
  etc: 'd 755 0:0',
  'etc/added': `f 644 7:8 ${sha('added in layer 2\n')}`,
  'etc/os-release': `f 644 0:0 ${sha('NAME=two\n')}`,
  home: 'd 755 0:0',
  'home/ro': 'd 555 0:0',
  'home/ro/file': `f 644 0:0 ${sha('in a read-only folder\n')}`,
  opt: 'd 755 0:0',
  'opt/stuff': 'd 750 0:0',
  'opt/stuff/c': `f 644 0:0 ${sha('c\n')}`,
  sbin: 'd 755 0:0',
  'sbin/init': 'l /usr/bin/tool',
  usr: 'd 755 0:0',
  'usr/bin': 'd 755 0:0',
  'usr/bin/late': `f 700 0:0 ${sha('late\n')}`,
  'usr/bin/su': `f 4755 0:0 ${sha('setuid\n')}`,
  'usr/bin/tool': `f 755 0:0 ${sha('#!/bin/sh\necho tool\n')} =usr/bin/tool`,
  'usr/bin/tool2': `f 755 0:0 ${sha('#!/bin/sh\necho tool\n')} =usr/bin/tool`,
  'usr/bin/tool3': `f 755 0:0 ${sha('#!/bin/sh\necho tool\n')} =usr/bin/tool`,
  var: 'd 755 0:0',
};

/**
 * Every entry of a tree: type, mode, owner (when `owners`), content hash, link target, and for files
 * with several names the first name of their inode.
 */
function describe(root: string, owners = isRoot): Record<string, string> {
  const out: Record<string, string> = {};
  const inodes = new Map<number, string>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, r));
      const own = owners ? ` ${st.uid}:${st.gid}` : '';
      if (st.isSymbolicLink()) out[r] = `l ${readlinkSync(join(root, r))}`;
      else if (st.isDirectory()) {
        out[r] = `d ${(st.mode & 0o7777).toString(8)}${own}`;
        walk(r);
      } else {
        let s = `f ${(st.mode & 0o7777).toString(8)}${own} ${sha(readFileSync(join(root, r)))}`;
        if (st.nlink > 1) {
          if (!inodes.has(st.ino)) inodes.set(st.ino, r);
          s += ` =${inodes.get(st.ino)}`;
        }
        out[r] = s;
      }
    }
  };
  walk('');
  return out;
}

function withoutOwners(d: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v.replace(/ \d+:\d+/, '')]));
}

/** Writes an OCI image layout holding one image tagged `tag`, from layer blobs; returns the folder. */
function writeLayout(dir: string, layers: Array<{ blob: Buffer; diff: Buffer; mediaType: string }>, tag: string, opts: { badDiff?: boolean } = {}): string {
  mkdirSync(join(dir, 'blobs/sha256'), { recursive: true });
  const put = (b: Buffer | string) => {
    const h = sha(b);
    writeFileSync(join(dir, 'blobs/sha256', h), b);
    return { digest: `sha256:${h}`, size: Buffer.byteLength(b) };
  };
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/bin'], Cmd: ['/sbin/init'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l, i) => `sha256:${opts.badDiff && i === 1 ? sha('other') : sha(l.diff)}`) },
  });
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(config) },
    layers: layers.map((l) => ({ mediaType: l.mediaType, ...put(l.blob) })),
  });
  const m = put(manifest);
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': tag } }] }));
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return dir;
}

async function knownLayers(): Promise<Array<{ blob: Buffer; diff: Buffer; mediaType: string }>> {
  const l1 = await tarOf(LAYER1);
  const l2 = await tarOf(LAYER2);
  const l3 = await tarOf(LAYER3);
  const zst = has('zstd') ? execFileSync('zstd', ['-q', '-c'], { input: l3 }) : gzipSync(l3);
  return [
    { blob: l1, diff: l1, mediaType: 'application/vnd.oci.image.layer.v1.tar' },
    { blob: gzipSync(l2), diff: l2, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' },
    { blob: zst, diff: l3, mediaType: has('zstd') ? 'application/vnd.oci.image.layer.v1.tar+zstd' : 'application/vnd.oci.image.layer.v1.tar+gzip' },
  ];
}

/** A tar (for oci-archive / docker-archive) of `dir`'s files, with optional extra symlink members. */
async function tarDir(dir: string, links: Array<[string, string]> = []): Promise<Buffer> {
  const entries: Entry[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (lstatSync(join(dir, r)).isDirectory()) {
        entries.push({ name: `${r}/`, type: 'directory' });
        walk(r);
      } else entries.push({ name: r, content: readFileSync(join(dir, r), 'latin1') });
    }
  };
  walk('');
  for (const [name, target] of links) entries.push({ name, type: 'symlink', linkname: target });
  // tarOf writes string content as UTF-8: write binary members through a Buffer-aware path.
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c) => chunks.push(c as Buffer));
  const ended = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      if (e.type === 'file' || !e.type) {
        const body = Buffer.from(e.content ?? '', 'latin1');
        pack.entry({ name: e.name, size: body.length, mode: 0o644, mtime: MTIME }, body, (err) => (err ? reject(err) : resolve()));
      } else pack.entry({ name: e.name, type: e.type, linkname: e.linkname, mode: 0o755, mtime: MTIME }, (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** Nothing of a failed import is left: no VNFS, no temp folder. */
function nothingLeft(statedir: string): string[] {
  return existsSync(join(statedir, 'vnfs')) ? readdirSync(join(statedir, 'vnfs')) : [];
}

t.test('KIND:PATH[:TAG] is parsed with the path as the longest prefix that exists', async (t) => {
  const exists = (p: string) => ['img.tar', 'dir:with:colons', 'layout'].includes(p);
  t.same(parseImageSource('docker-archive:img.tar', exists), { kind: 'docker-archive', path: 'img.tar', tag: null });
  t.same(parseImageSource('docker-archive:img.tar:busybox:latest', exists), { kind: 'docker-archive', path: 'img.tar', tag: 'busybox:latest' });
  t.same(parseImageSource('oci:dir:with:colons:v2', exists), { kind: 'oci', path: 'dir:with:colons', tag: 'v2' });
  t.same(parseImageSource('oci-archive:img.tar:v1', exists), { kind: 'oci-archive', path: 'img.tar', tag: 'v1' });
  t.equal(parseImageSource('demo.vnfs', exists), null, 'a capsule file is not an image source');
  t.equal(parseImageSource('c:/x', exists), null, 'nor an unknown prefix');
  t.throws(() => parseImageSource('oci-archive:missing.tar:v1', exists), /no such file missing\.tar/);
  t.ok(referenceMatches('docker.io/library/busybox:latest', 'busybox:latest'));
  t.ok(referenceMatches('docker.io/library/busybox:latest', 'latest'));
  t.ok(referenceMatches('docker.io/library/busybox:latest', 'busybox'));
  t.notOk(referenceMatches('docker.io/library/busybox:latest', 'alpine'));
  t.notOk(referenceMatches('example/demo:v1', 'v2'));
});

t.test('a layout, an oci-archive and a docker-archive of known layers give the expected tree', async (t) => {
  const work = tempdir(t);
  const statedir = join(work, 'state');
  const layers = await knownLayers();
  const layout = writeLayout(join(work, 'layout'), layers, 'v1');

  const r = await importImage(statedir, { kind: 'oci', path: layout, tag: 'v1' }, { name: 'fromlayout' });
  t.match(r, { name: 'fromlayout', reference: 'v1', layers: 3, whiteouts: 3, noInit: false });
  const want = isRoot ? EXPECTED : withoutOwners(EXPECTED);
  t.same(describe(join(statedir, 'vnfs/fromlayout/rootfs')), want, 'whiteouts, the opaque folder, links across layers, modes and owners');
  t.ok(vnfsExists(statedir, 'fromlayout'), 'the VNFS exists');
  t.match(readFileSync(join(statedir, 'vnfs/fromlayout/config'), 'utf8'), /description: imported from oci:layout v1/, 'its config says where it came from');
  t.match(JSON.parse(readFileSync(join(statedir, 'vnfs/fromlayout/oci-config.json'), 'utf8')), { config: { Cmd: ['/sbin/init'] } }, 'the image config is kept');

  const ociArchive = join(work, 'image.oci.tar');
  writeFileSync(ociArchive, await tarDir(layout));
  const r2 = await importImage(statedir, parseImageSource(`oci-archive:${ociArchive}:v1`)!);
  t.equal(r2.name, 'image', 'named after the file');
  t.same(describe(join(statedir, 'vnfs/image/rootfs')), want, 'oci-archive: the same tree');

  // docker save's layout: <id>/layer.tar (uncompressed), <hex>.json config, manifest.json; a repeated
  // layer is a symlink to the first copy.
  const docker = join(work, 'docker');
  mkdirSync(docker);
  const configText = readFileSync(join(layout, 'blobs/sha256', (JSON.parse(readFileSync(join(layout, 'blobs/sha256', (JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }).manifests[0]!.digest.slice(7)), 'utf8')) as { config: { digest: string } }).config.digest.slice(7)));
  writeFileSync(join(docker, `${sha(configText)}.json`), configText);
  const ids = layers.map((_, i) => `${'abcdef'[i]}${'0'.repeat(63)}`);
  layers.forEach((l, i) => {
    if (i === 2) return;
    mkdirSync(join(docker, ids[i]!));
    writeFileSync(join(docker, ids[i]!, 'layer.tar'), l.diff);
  });
  mkdirSync(join(docker, 'l3real'));
  writeFileSync(join(docker, 'l3real', 'layer.tar'), layers[2]!.diff);
  writeFileSync(join(docker, 'manifest.json'), JSON.stringify([
    { Config: `${sha(configText)}.json`, RepoTags: ['example/other:v9'], Layers: [`${ids[0]}/layer.tar`] },
    { Config: `${sha(configText)}.json`, RepoTags: ['example/demo:v1'], Layers: [`${ids[0]}/layer.tar`, `${ids[1]}/layer.tar`, `${ids[2]}/layer.tar`] },
  ]));
  const dockerArchive = join(work, 'demo.tar');
  writeFileSync(dockerArchive, await tarDir(docker, [[`${ids[2]}/layer.tar`, '../l3real/layer.tar']]));
  await t.rejects(importImage(statedir, parseImageSource(`docker-archive:${dockerArchive}`)!), /holds 2 images: add :TAG \(one of example\/other:v9, example\/demo:v1\)/, 'two images and no tag: the admin is told the tags');
  const r3 = await importImage(statedir, parseImageSource(`docker-archive:${dockerArchive}:example/demo:v1`)!);
  t.match(r3, { name: 'demo', reference: 'example/demo:v1', layers: 3 });
  t.same(describe(join(statedir, 'vnfs/demo/rootfs')), want, 'docker-archive: the same tree');
  t.same(nothingLeft(statedir).filter((n) => n.startsWith('.')), [], 'no temp folder left');
});

t.test('hostile or broken images are refused and leave nothing behind', async (t) => {
  const work = tempdir(t);
  const statedir = join(work, 'state');
  const base = await tarOf([{ name: 'etc/hostname', content: 'x\n' }]);
  const cases: Array<[string, Entry[] | 'corrupt' | 'baddiff' | 'truncated', RegExp]> = [
    ['an entry that climbs out', [{ name: '../../escape', content: 'x' }], /escapes the capsule/],
    ['an absolute entry', [{ name: '/etc/passwd', content: 'x' }], /absolute path/],
    ['a write through a symlink of a lower layer', [{ name: 'evil', type: 'symlink', linkname: '/etc' }, { name: 'evil/passwd', content: 'x' }], /below a symbolic link \(evil\)/],
    ['a symlink out of the root file system', [{ name: 'up', type: 'symlink', linkname: '../../../../root' }], /leaves the root file system/],
    ['a hard link to a missing file', [{ name: 'h', type: 'link', linkname: 'nope' }], /not a file of the image/],
    ['a whiteout through a symlink', [{ name: 'l', type: 'symlink', linkname: '/etc' }, { name: 'l/.wh.hostname' }], /below a symbolic link \(l\)/],
    ['a corrupt blob', 'corrupt', /blob is corrupt/],
    ['a layer that is not what the config says', 'baddiff', /does not match the image config/],
    ['a truncated archive', 'truncated', /unexpected end|truncated|Unexpected end/i],
  ];
  for (const [what, layer2, err] of cases) {
    const dir = join(work, `l-${what.replace(/\W+/g, '-')}`);
    const second = Array.isArray(layer2) ? await tarOf(layer2) : await tarOf([{ name: 'etc/motd', content: 'hi\n' }]);
    writeLayout(dir, [{ blob: base, diff: base, mediaType: 'application/vnd.oci.image.layer.v1.tar' }, { blob: second, diff: second, mediaType: 'application/vnd.oci.image.layer.v1.tar' }], 'v1', { badDiff: layer2 === 'baddiff' });
    if (layer2 === 'corrupt') writeFileSync(join(dir, 'blobs/sha256', sha(second)), Buffer.concat([second.subarray(0, 100), Buffer.from('X'), second.subarray(101)]));
    let src = `oci:${dir}:v1`;
    if (layer2 === 'truncated') {
      const whole = await tarDir(dir);
      writeFileSync(`${dir}.tar`, whole.subarray(0, Math.floor(whole.length * 0.6)));
      src = `oci-archive:${dir}.tar:v1`;
    }
    await t.rejects(importImage(statedir, parseImageSource(src)!, { name: 'bad' }), err, what);
    t.same(nothingLeft(statedir), [], `${what}: nothing left in vnfs/`);
  }
  writeLayout(join(work, 'ok'), [{ blob: base, diff: base, mediaType: 'application/vnd.oci.image.layer.v1.tar' }], 'v1');
  await t.rejects(importImage(statedir, parseImageSource(`oci:${join(work, 'ok')}:v2`)!), /no image tagged v2 \(it has v1\)/, 'an unknown tag names the ones there are');
  const r = await importImage(statedir, parseImageSource(`oci:${join(work, 'ok')}`)!, { name: 'ok' });
  t.equal(r.noInit, true, 'an image without sbin/init imports, flagged: nodes cannot boot it as it is');
  await t.rejects(importImage(statedir, parseImageSource(`oci:${join(work, 'ok')}`)!, { name: 'ok' }), /vnfs ok exists already/, 'an existing VNFS is not replaced without --force');
});

t.test('real tools: an image made by umoci (with its whiteouts), converted by skopeo, imports as umoci unpacks it', { skip: !(has('umoci') && has('skopeo')) && !process.env.CI ? 'umoci and skopeo (Debian) not installed' : false }, async (t) => {
  const work = tempdir(t);
  const layout = join(work, 'layout');
  const umoci = (...a: string[]) => execFileSync('umoci', a, { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  umoci('init', '--layout', layout);
  umoci('new', '--image', `${layout}:v1`);
  // Layer 1: a small tree.
  umoci('unpack', '--rootless', '--image', `${layout}:v1`, 'b1');
  const r1 = join(work, 'b1/rootfs');
  mkdirSync(join(r1, 'usr/bin'), { recursive: true });
  mkdirSync(join(r1, 'etc/conf.d'), { recursive: true });
  mkdirSync(join(r1, 'sbin'));
  writeFileSync(join(r1, 'usr/bin/tool'), '#!/bin/sh\necho tool\n');
  chmodSync(join(r1, 'usr/bin/tool'), 0o755);
  linkSync(join(r1, 'usr/bin/tool'), join(r1, 'usr/bin/tool-alias'));
  symlinkSync('../usr/bin/tool', join(r1, 'sbin/init'));
  writeFileSync(join(r1, 'etc/conf.d/a'), 'a\n');
  writeFileSync(join(r1, 'etc/conf.d/b'), 'b\n');
  writeFileSync(join(r1, 'etc/secret'), 'secret\n');
  umoci('repack', '--image', `${layout}:v1`, 'b1');
  // Layer 2: deletions (umoci writes whiteouts for them), a change, an addition.
  umoci('unpack', '--rootless', '--image', `${layout}:v1`, 'b2');
  const r2 = join(work, 'b2/rootfs');
  unlinkSync(join(r2, 'etc/secret'));
  unlinkSync(join(r2, 'etc/conf.d/a'));
  unlinkSync(join(r2, 'etc/conf.d/b'));
  rmdirSync(join(r2, 'etc/conf.d'));
  writeFileSync(join(r2, 'usr/bin/tool'), '#!/bin/sh\necho tool v2\n');
  writeFileSync(join(r2, 'etc/motd'), 'welcome\n');
  umoci('repack', '--image', `${layout}:v1`, 'b2');
  // umoci's own view of the final image, the reference.
  umoci('unpack', '--rootless', '--image', `${layout}:v1`, 'ref');
  const want = withoutOwners(describe(join(work, 'ref/rootfs'), false));
  t.notOk('etc/secret' in want, 'umoci applied its whiteout (the reference is sound)');

  const skopeo = (...a: string[]) => execFileSync('skopeo', ['--insecure-policy', ...a], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  skopeo('copy', `oci:${layout}:v1`, `oci-archive:${join(work, 'img.oci.tar')}:v1`);
  skopeo('copy', `oci:${layout}:v1`, `docker-archive:${join(work, 'img.docker.tar')}:example/umoci:v1`);

  const statedir = join(work, 'state');
  for (const src of [`oci:${layout}:v1`, `oci-archive:${join(work, 'img.oci.tar')}:v1`, `docker-archive:${join(work, 'img.docker.tar')}:example/umoci:v1`]) {
    const name = src.split(':')[0]!;
    const r = await importImage(statedir, parseImageSource(src)!, { name });
    t.ok(r.whiteouts >= 1, `${name}: umoci's whiteouts applied (${r.whiteouts})`);
    t.same(withoutOwners(describe(join(statedir, 'vnfs', name, 'rootfs'), false)), want, `${name}: the same tree as umoci unpack`);
  }
});

t.test('provisiond vnfs import oci-archive:FILE:TAG, then vnfs list shows it', async (t) => {
  const work = tempdir(t);
  const statedir = join(work, 'state');
  mkdirSync(statedir);
  const cfg = join(work, 'provisiond.yaml');
  writeFileSync(cfg, `statedir: ${statedir}\ndatabase: sqlite:${join(statedir, 'provisiond.db')}\n`);
  const layout = writeLayout(join(work, 'layout'), await knownLayers(), 'v1');
  writeFileSync(join(work, 'compute.tar'), await tarDir(layout));
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(REPO, 'bin/provisiond.js'), '-c', cfg, ...args], { encoding: 'utf8' });
  const r = cli('vnfs', 'import', `oci-archive:${join(work, 'compute.tar')}:v1`);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /imported vnfs compute from oci-archive:.*compute\.tar:v1 \(v1\): 3 layers, \d+ entries, .*, 3 whiteouts applied/);
  const list = cli('vnfs', 'list', '--json');
  t.match(JSON.parse(list.stdout), [{ name: 'compute', description: /imported from oci-archive:compute\.tar v1/ }], 'vnfs list shows the imported image');
  const bad = cli('vnfs', 'import', `oci-archive:${join(work, 'compute.tar')}:v7`, '--name', 'other');
  t.equal(bad.status, 1, 'an unknown tag fails the command');
  t.match(bad.stderr, /no image tagged v7 \(it has v1\)/);
  t.notMatch(bad.stderr, /\n\s+at /, 'without a stack trace');
});
