/**
 * The shipped nodescripts (init/all 10-vnfs .. 99-boot, ready/all/10-heartbeat): their output is valid
 * busybox sh, and rendered for a node by the real engine it does what it says when busybox runs it in
 * a chroot: downloads and unpacks the demo VNFS into a tmpfs, writes hostname/hosts/network files,
 * installs the ready agent (which then checks in), and leaves the switch_root request for /init.
 * The master's HTTP side is a small server in this test (getfile paths, events, ready scripts), so
 * the test does not depend on the daemon; the daemon's own tests cover the real endpoints.
 */
import t from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, cpSync, mkdirSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createNodescriptEngine } from '../../src/nodescript/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { fetchBusybox } from '../../src/vnfs/debian-fetch.js';
import { makeBusyboxRootfs, replaceRootfs, SHIPPED_VNFS } from '../../src/vnfs/build.js';
import { buildImage } from '../../src/vnfs/index.js';
import { writeCapsuleConfig } from '../../src/vnfs/capsule.js';
import { rootMissing, skipUnlessCi } from '../lib/gate.js';

const REPO = new URL('../../', import.meta.url).pathname;
// Not root: skipped with one line, except under CI where a skip would hide a broken node side.
const needsRoot = skipUnlessCi(rootMissing('chroot, mount and UTS namespaces'));

function tempdir(tt: { teardown(fn: () => void): void }, prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tt.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const ENV = {
  PATH: '/bin:/usr/bin:/sbin:/usr/sbin', STATE: 'init', NODENAME: 'n0001', VNFS: 'demo', ENABLED: '1', DEBUG: '0', GROUPNAME: 'cluster',
  NODEID: '52:54:00:AA:BB:01', IPADDR: '', STATEDIR: '/nonexistent', VNFSMETHOD: 'http', VNFSMASTER: '10.0.0.1:8080', VNFSPREFIX: 'files', READY_INTERVAL: '300',
};

t.test('every shipped script prints valid busybox sh', async (t) => {
  const dirs = ['init/all', 'ready/all'];
  for (const mod of readdirSync(join(REPO, 'nodescripts/modules'))) {
    if (!statSync(join(REPO, 'nodescripts/modules', mod)).isDirectory()) continue;
    for (const state of readdirSync(join(REPO, 'nodescripts/modules', mod))) {
      if (statSync(join(REPO, 'nodescripts/modules', mod, state)).isDirectory()) dirs.push(`modules/${mod}/${state}`);
    }
  }
  t.ok(dirs.includes('modules/masterauth/init'), 'module scripts are checked too');
  for (const state of dirs) {
    const dir = join(REPO, 'nodescripts', state);
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (!(statSync(path).mode & 0o111)) continue;
      const out = execFileSync(path, [], { env: ENV, encoding: 'utf8' });
      t.ok(out.length > 0, `${state}/${name} prints something`);
      const check = spawnSync('busybox', ['sh', '-n'], { input: out, encoding: 'utf8' });
      t.equal(check.status, 0, `${state}/${name}: busybox sh -n accepts its output ${check.stderr}`);
    }
  }
  const noVnfs = execFileSync(join(REPO, 'nodescripts/init/all/10-vnfs'), [], { env: { ...ENV, VNFS: '' }, encoding: 'utf8' });
  t.match(noVnfs, /has no VNFS assigned/, '10-vnfs tells a node without VNFS why it stops');
  t.match(noVnfs, /exit 1/);
});

t.test('values from the registry reach the node as the exact text, never as shell code', async (t) => {
  // A name or description with quotes, $(...), backticks and globs: the master quotes it (in the
  // shell itself, without a process per value) and busybox sh on the node reads back the same bytes.
  const hostile = ["it's $(touch /tmp/pwned) `id` \"q\" 'a''b'", "'", "a'", "'b", 'back\\slash ~ * ? ;&|', ''];
  for (const name of hostile) {
    const prelude = execFileSync(join(REPO, 'nodescripts/init/all/00-init'), [], { env: { ...ENV, NODENAME: name, GROUPNAME: name }, encoding: 'utf8' });
    const setup = prelude.split('\n').filter((l) => /^(NODENAME|GROUPNAME)=/.test(l)).join('\n');
    const back = spawnSync('busybox', ['sh', '-c', `${setup}\nprintf '%s\\n%s' "$NODENAME" "$GROUPNAME"`], { encoding: 'utf8' });
    t.equal(back.stdout, `${name}\n${name}`, `00-init: ${JSON.stringify(name)} arrives intact`);
    const host = execFileSync(join(REPO, 'nodescripts/init/all/49-hostname'), [], { env: { ...ENV, NODENAME: name }, encoding: 'utf8' });
    const line = host.split('\n').find((l) => l.startsWith('PROVISIOND_NODENAME='))!;
    t.equal(spawnSync('busybox', ['sh', '-c', `${line}\nprintf %s "$PROVISIOND_NODENAME"`], { encoding: 'utf8' }).stdout, name, `49-hostname: ${JSON.stringify(name)}`);
  }
});

t.test("99-boot reads the capsule's kernel, initrd and kernelArgs (quotes, comments, null)", async (t) => {
  const statedir = tempdir(t, 'pvd-ns-conf-');
  mkdirSync(join(statedir, 'vnfs/demo'), { recursive: true });
  writeFileSync(join(statedir, 'vnfs/demo/config'), ['name: demo', 'kernelArgsOld: wrong', 'kernel: "vmlinuz-6.1" # the VNFS kernel', 'initrd: null', "kernelArgs: 'console=ttyS0 quiet'   ", ''].join('\n'));
  const out = execFileSync(join(REPO, 'nodescripts/init/all/99-boot'), [], { env: { ...ENV, STATEDIR: statedir }, encoding: 'utf8' });
  const vars = out.split('\n').filter((l) => l.startsWith('PROVISIOND_VNFS_')).join('\n');
  const got = spawnSync('busybox', ['sh', '-c', `${vars}\nprintf '%s|%s|%s' "$PROVISIOND_VNFS_KERNEL" "$PROVISIOND_VNFS_INITRD" "$PROVISIOND_VNFS_ARGS"`], { encoding: 'utf8' }).stdout;
  t.equal(got, 'vmlinuz-6.1||console=ttyS0 quiet', 'kernel unquoted without its comment, null initrd empty, args kept');
  const none = execFileSync(join(REPO, 'nodescripts/init/all/99-boot'), [], { env: { ...ENV, STATEDIR: statedir, VNFS: 'other' }, encoding: 'utf8' });
  t.match(none, /PROVISIOND_VNFS_KERNEL=''\n/, 'a capsule without config: no kernel of its own');
});

interface Hits {
  urls: string[];
}

const SLOW_NODE = '52:54:00:AA:BB:99';

function masterStub(statedir: string, hits: Hits, readyScript: string): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    hits.urls.push(url.pathname + url.search);
    if (url.pathname.startsWith('/files/vnfs/')) {
      const file = join(statedir, decodeURIComponent(url.pathname.slice('/files/'.length)));
      if (!file.startsWith(join(statedir, 'vnfs')) || !existsSync(file)) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, { 'content-length': statSync(file).size });
      createReadStream(file).pipe(res);
      return;
    }
    if (url.pathname === '/nodescripts/ready') {
      // A node the master cannot answer yet (52:54:00:AA:BB:99): its first two check-ins fail.
      if (url.searchParams.get('nodeid') === SLOW_NODE && hits.urls.filter((u) => u.includes(`nodeid=${SLOW_NODE}`)).length <= 2) {
        res.writeHead(503).end('not yet');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/x-shellscript' }).end(readyScript);
      return;
    }
    res.writeHead(url.pathname.endsWith('/events') ? 204 : 404).end();
  });
}

t.test('the rendered init script provisions a node in a chroot, and its ready agent checks in', { skip: needsRoot }, async (t) => {
  const statedir = tempdir(t, 'pvd-ns-state-');
  cpSync(join(REPO, 'nodescripts'), join(statedir, 'nodescripts'), { recursive: true });
  const busybox = await fetchBusybox();
  // the master's demo VNFS, built from the shipped recipe
  await replaceRootfs(statedir, 'demo', (dir) => makeBusyboxRootfs(dir, busybox, join(SHIPPED_VNFS, 'demo/recipe')));
  writeFileSync(join(statedir, 'vnfs/demo/rootfs/etc/vnfs-marker'), 'demo vnfs\n');
  await buildImage(statedir, 'demo', silentLogger());
  // the node: a busybox root standing in for the stage-1 (same busybox, same client functions)
  const node = tempdir(t, 'pvd-ns-node-');
  await makeBusyboxRootfs(join(node, 'root'), busybox, join(node, 'none'));
  cpSync(join(REPO, 'initramfs/lib/provisiond'), join(node, 'root/lib/provisiond'), { recursive: true });
  mkdirSync(join(node, 'root/newroot'));

  const hits: Hits = { urls: [] };
  const server = masterStub(statedir, hits, '#!/bin/sh\necho ready script ran\nexit 0\n');
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;

  const engine = createNodescriptEngine({ statedir, logger: silentLogger() });
  t.teardown(() => engine.close());
  const render = async (vnfs: string): Promise<string> => {
    const chunks: Buffer[] = [];
    for await (const c of engine.render(
      { state: 'init', nodename: 'n0001', nodeid: '52:54:00:AA:BB:01', group: 'cluster', vnfs, enabled: true, debug: 0, ipaddr: '' },
      { statedir, vnfsMethod: 'http', vnfsMaster: `127.0.0.1:${port}`, vnfsPrefix: 'files', readyInterval: 1 },
    )) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString();
  };
  writeFileSync(join(node, 'root/init.sh'), await render('demo'));
  writeFileSync(join(node, 'root/bad.sh'), await render('nope'));

  // Everything the node does happens inside one private mount namespace; the checks run there too.
  const driver = `
    set -e
    mount -t proc proc /proc; mount -t tmpfs tmpfs /run
    export PROVISIOND_URL=http://127.0.0.1:${port} PROVISIOND_NODEID=52:54:00:AA:BB:01 PROVISIOND_IFACE=eth0
    export PROVISIOND_IP=10.0.0.5 PROVISIOND_PREFIX=24 PROVISIOND_ROUTER=10.0.0.254 PROVISIOND_DNS=10.0.0.53 PROVISIOND_DOMAIN=cluster.test
    set +e; sh /bad.sh >/bad.out 2>&1; echo "BAD_RC=$?"; set -e
    sh /init.sh >/init.out 2>&1 || { echo "INIT_RC=$?"; cat /init.out; exit 1; }
    echo "INIT_RC=0"
    grep -q " /newroot tmpfs " /proc/mounts && echo NEWROOT_TMPFS
    cat /newroot/etc/vnfs-marker
    echo "HOSTNAME=$(cat /newroot/etc/hostname)"
    grep n0001 /newroot/etc/hosts
    grep provisiond-master /newroot/etc/hosts
    grep nameserver /newroot/etc/resolv.conf
    cat /newroot/etc/provisiond/network | grep -E '^(IFACE|IPADDR|GATEWAY)='
    grep provisiond-ready /newroot/etc/inittab
    cat /run/provisiond/boot
    cat /bad.out | grep -i 'could not download' || true
    mount -t proc proc /newroot/proc
    chroot /newroot /sbin/provisiond-ready & agent=$!
    sleep 4; kill $agent
    cat /newroot/var/log/provisiond-ready.log
    # the agent of a node with the default interval whose first check-ins fail (the address not up yet)
    sed -i "s/^NODEID=.*/NODEID='${SLOW_NODE}'/; s/^READY_INTERVAL=.*/READY_INTERVAL='300'/" /newroot/etc/provisiond/ready.conf
    chroot /newroot /sbin/provisiond-ready & agent=$!
    sleep 5; kill $agent
  `;
  // Asynchronously: the stub master answers from this process's event loop meanwhile.
  const child = spawn('unshare', ['-m', '-u', '--propagation', 'private', 'chroot', join(node, 'root'), '/bin/sh', '-c', driver], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const [status] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  t.equal(status, 0, `the driver ran to the end\n${out}`);
  t.match(out, /BAD_RC=[1-9]/, 'a node whose VNFS image is missing stops with an error');
  t.match(out, /could not download the image of VNFS nope/i, 'and says why');
  t.match(out, /INIT_RC=0/, 'the init script succeeds');
  t.match(out, /NEWROOT_TMPFS/, '10-vnfs: /newroot is a tmpfs');
  t.match(out, /demo vnfs/, '10-vnfs: the VNFS content is unpacked there');
  t.match(out, /HOSTNAME=n0001/, '49-hostname: /etc/hostname in the new root');
  t.match(out, /10\.0\.0\.5\tn0001\.cluster\.test n0001/, '50-network: the node in /etc/hosts');
  t.match(out, /127\.0\.0\.1\tprovisiond-master/, '50-network: the master in /etc/hosts');
  t.match(out, /nameserver 10\.0\.0\.53/, '50-network: resolv.conf from DHCP');
  t.match(out, /GATEWAY=10\.0\.0\.254/, '50-network: /etc/provisiond/network');
  t.match(out, /::respawn:\/sbin\/provisiond-ready/, '80-ready-agent: busybox init starts the agent');
  t.match(out, /BOOT_ROOT=\/newroot\nBOOT_INIT=\/sbin\/init/, '99-boot: asks /init to switch_root into /newroot');
  t.match(out, /ready script ran/, 'the agent ran the ready nodescript');
  t.ok(hits.urls.some((u) => u.startsWith('/files/vnfs/demo/image.cpio.gz.sha256')), 'getfile fetched the checksum sidecar');
  t.ok(hits.urls.some((u) => u === '/nodescripts/ready?nodeid=52:54:00:AA:BB:01'), 'the agent asked for the ready script with its nodeid');
  t.ok(hits.urls.some((u) => /^\/nodes\/52:54:00:AA:BB:01\/events\?stage=%72%65%61%64%79&msg=%65%78%69%74%20%30$/.test(u)), 'the agent reported exit 0');
  t.ok(hits.urls.filter((u) => u.startsWith('/nodescripts/ready')).length >= 2, 'the agent checks in again after READY_INTERVAL');
  const slow = hits.urls.filter((u) => u === `/nodescripts/ready?nodeid=${SLOW_NODE}`).length;
  t.ok(slow >= 3, `a first check-in that fails is retried within seconds, not after the 300 s interval (${slow} asked in 5 s)`);
  t.ok(hits.urls.some((u) => u.startsWith(`/nodes/${SLOW_NODE}/events?stage=%72%65%61%64%79&msg=%65%78%69%74%20%30`)), 'and that node checks in ready');
});

/** The entries of a gzip file holding one or more newc archives one after the other: name -> entry (the last one wins, as in the kernel). */
function readInitramfs(file: string): Map<string, { mode: number; data: Buffer }> {
  const buf = gunzipSync(readFileSync(file));
  const out = new Map<string, { mode: number; data: Buffer }>();
  let off = 0;
  while (off < buf.length) {
    if (buf[off] === 0) {
      off++;
      continue;
    }
    const field = (i: number): number => parseInt(buf.toString('latin1', off + 6 + i * 8, off + 14 + i * 8), 16);
    const namesize = field(11);
    const size = field(6);
    const name = buf.toString('utf8', off + 110, off + 110 + namesize - 1);
    const dataAt = Math.ceil((off + 110 + namesize) / 4) * 4;
    if (name !== 'TRAILER!!!') out.set(name.replace(/^\.\//, ''), { mode: field(1), data: buf.subarray(dataAt, dataAt + size) });
    off = dataAt + Math.ceil(size / 4) * 4;
  }
  return out;
}

t.test('a systemd VNFS: machine-id per node, networkd keeps the address, agent unit, getty, kexec with the changes appended', { skip: needsRoot }, async (t) => {
  const statedir = tempdir(t, 'pvd-ns-sd-');
  cpSync(join(REPO, 'nodescripts'), join(statedir, 'nodescripts'), { recursive: true });
  const busybox = await fetchBusybox();
  // A root laid out as Debian's systemd one (what the scripts look at), on a busybox base so it stays small.
  await replaceRootfs(statedir, 'sd', async (dir) => {
    await makeBusyboxRootfs(dir, busybox, join(dir, 'none'));
    for (const d of ['lib/systemd/system', 'etc/systemd/system/getty.target.wants', 'etc/systemd/network', 'boot']) mkdirSync(join(dir, d), { recursive: true });
    writeFileSync(join(dir, 'lib/systemd/systemd'), '#!/bin/sh\n', { mode: 0o755 });
    rmSync(join(dir, 'sbin/init'));
    symlinkSync('../lib/systemd/systemd', join(dir, 'sbin/init'));
    for (const u of ['systemd-networkd.service', 'systemd-networkd.socket', 'getty@.service']) writeFileSync(join(dir, 'lib/systemd/system', u), '[Unit]\n');
    symlinkSync('/lib/systemd/system/getty@.service', join(dir, 'etc/systemd/system/getty.target.wants/getty@tty1.service'));
    writeFileSync(join(dir, 'boot/vmlinuz-6.1.0-test-amd64'), 'not really a kernel\n');
    writeFileSync(join(dir, 'etc/machine-id'), '');
  });
  await writeCapsuleConfig(join(statedir, 'vnfs/sd'), { kernel: '/boot/vmlinuz-6.1.0-test-amd64', initrd: null, kernelArgs: 'systemd.unit=multi-user.target' });
  await buildImage(statedir, 'sd', silentLogger());
  const node = tempdir(t, 'pvd-ns-sdnode-');
  await makeBusyboxRootfs(join(node, 'root'), busybox, join(node, 'none'));
  cpSync(join(REPO, 'initramfs/lib/provisiond'), join(node, 'root/lib/provisiond'), { recursive: true });
  // No kexec can run in a test: this one records what 99-boot asks of it and keeps the initramfs it was given.
  writeFileSync(join(node, 'root/sbin/kexec'), '#!/bin/sh\necho "$@" > /kexec.args\nfor a; do case $a in --initrd=*) cp "${a#--initrd=}" /kexec.initrd ;; esac; done\n', { mode: 0o755 });
  mkdirSync(join(node, 'root/sys/kernel'), { recursive: true });
  writeFileSync(join(node, 'root/sys/kernel/kexec_loaded'), '0\n');
  writeFileSync(join(node, 'root/cmdline'), 'BOOT_IMAGE=vmlinuz initrd=initramfs.img console=ttyS0,115200 provisiond=http://10.0.0.1:8080 quiet\n');

  const hits: Hits = { urls: [] };
  const server = masterStub(statedir, hits, '#!/bin/sh\nexit 0\n');
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const engine = createNodescriptEngine({ statedir, logger: silentLogger() });
  t.teardown(() => engine.close());
  const chunks: Buffer[] = [];
  for await (const c of engine.render(
    { state: 'init', nodename: 'n0007', nodeid: '52:54:00:AA:BB:07', group: 'cluster', vnfs: 'sd', enabled: true, debug: 0, ipaddr: '' },
    { statedir, vnfsMethod: 'http', vnfsMaster: `127.0.0.1:${port}`, vnfsPrefix: 'files', readyInterval: 300 },
  )) chunks.push(c as Buffer);
  writeFileSync(join(node, 'root/init.sh'), Buffer.concat(chunks));

  const driver = `
    mount -t proc proc /proc; mount -t tmpfs tmpfs /run
    export PROVISIOND_URL=http://127.0.0.1:${port} PROVISIOND_NODEID=52:54:00:AA:BB:07 PROVISIOND_IFACE=eth0 CMDLINE_FILE=/cmdline
    export PROVISIOND_IP=10.0.0.7 PROVISIOND_PREFIX=24 PROVISIOND_ROUTER=10.0.0.254 PROVISIOND_DNS=10.0.0.53
    sh /init.sh >/kexec.out 2>&1; echo "KEXEC_RC=$?"; cat /kexec.out
    echo "== boot"; cat /run/provisiond/boot
    echo "== args"; cat /kexec.args
    ls /run/provisiond/image.cpio.gz 2>/dev/null && echo IMAGE_LEFT
    [ -e /newroot/bin/busybox ] || echo "SKELETON_ONLY kernel=$(cat /newroot/boot/vmlinuz-6.1.0-test-amd64)"
    # the same node whose kexec -l fails: the rest of the image is unpacked after all
    printf '#!/bin/sh\necho "kexec_load failed: Operation not permitted" >&2\nexit 1\n' > /sbin/kexec
    DESTDIR=/newroot3 PROVISIOND_RUN=/run/p3 sh /init.sh >/failed.out 2>&1; echo "FAILED_RC=$?"; cat /failed.out
    echo "== boot3"; cat /run/p3/boot
    [ -x /newroot3/bin/busybox ] && echo "WHOLE3 hostname=$(cat /newroot3/etc/hostname) id=$(cat /newroot3/etc/machine-id)"
    ls /run/p3/image.cpio.gz 2>/dev/null && echo IMAGE3_LEFT
    # the same node on a stage-1 without kexec
    rm /sbin/kexec
    DESTDIR=/newroot2 PROVISIOND_RUN=/run/p2 sh /init.sh >/nokexec.out 2>&1; echo "NOKEXEC_RC=$?"; cat /nokexec.out
    echo "== boot2"; cat /run/p2/boot
    ls /run/p2/image.cpio.gz 2>/dev/null && echo IMAGE2_LEFT
    echo "== getty2"; readlink /newroot2/etc/systemd/system/getty@tty1.service
  `;
  const child = spawn('unshare', ['-m', '-u', '--propagation', 'private', 'chroot', join(node, 'root'), '/bin/sh', '-c', driver], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  await once(child, 'close');
  clearTimeout(timer);
  t.match(out, /KEXEC_RC=0/, `the init script succeeds\n${out}`);
  t.match(out, /== boot\nBOOT_KEXEC=yes\nBOOT_ROOT=\/newroot\nBOOT_INIT=\/sbin\/init\n/, '99-boot asks /init to kexec');
  const args = /== args\n(.*)\n/.exec(out)?.[1] ?? '';
  t.match(args, /^-l --no-checks \/newroot\/boot\/vmlinuz-6\.1\.0-test-amd64 --initrd=\/run\/provisiond\/image\.cpio\.gz --append=/, 'kexec -l the VNFS kernel with the image as its initramfs, without the sha256 of the segments');
  t.match(args, /--append=console=ttyS0,115200 provisiond=http:\/\/10\.0\.0\.1:8080 quiet rdinit=\/sbin\/init systemd\.unit=multi-user\.target$/, 'the stage-1 command line without initrd=/BOOT_IMAGE=, rdinit= and kernelArgs');
  t.notMatch(out, /IMAGE_LEFT/, 'the image file is freed once loaded');
  t.ok(hits.urls.some((u) => /\/events\?stage=kexec&msg=%2Fboot%2Fvmlinuz/.test(u)), 'the node reports kexec to its timeline');

  const files = readInitramfs(join(node, 'root/kexec.initrd'));
  const text = (n: string): string => files.get(n)?.data.toString() ?? '(missing)';
  t.equal(text('etc/hostname'), 'n0007\n', 'the kernel gets the hostname 49-hostname wrote (appended after the image)');
  const machineId = text('etc/machine-id').trim();
  t.match(machineId, /^[0-9a-f]{32}$/, 'a machine-id of 32 hex digits');
  t.not(machineId, '0'.repeat(32));
  const again = execFileSync(join(REPO, 'nodescripts/init/all/60-systemd'), [], { env: { ...ENV, NODEID: '52:54:00:aa:bb:07' }, encoding: 'utf8' });
  t.match(again, new RegExp(`PROVISIOND_MACHINE_ID=${machineId}\\n`), 'the same for the same hardware address, whatever its case');
  const other = execFileSync(join(REPO, 'nodescripts/init/all/60-systemd'), [], { env: { ...ENV, NODEID: '52:54:00:AA:BB:08' }, encoding: 'utf8' });
  t.notMatch(other, new RegExp(machineId), 'and another for another node');
  const network = text('etc/systemd/network/10-provisiond.network');
  t.match(network, /\[Match\]\nMACAddress=\S+\n/, 'networkd matches the interface by hardware address (udev renames eth0 after a kexec)');
  t.match(network, /Address=10\.0\.0\.7\/24\nGateway=10\.0\.0\.254\nDNS=10\.0\.0\.53\n/, 'with the address DHCP gave the stage-1');
  t.match(network, /DHCP=no\n/, 'and no second DHCP');
  t.equal(text('etc/systemd/system/multi-user.target.wants/systemd-networkd.service'), '/lib/systemd/system/systemd-networkd.service', 'systemd-networkd enabled');
  t.equal(text('etc/systemd/system/systemd-networkd-wait-online.service'), '/dev/null', 'nothing waits for a network that is already up');
  for (const u of ['e2scrub_reap.service', 'e2scrub_all.timer', 'fstrim.timer', 'apt-daily.timer', 'apt-daily-upgrade.timer', 'dpkg-db-backup.timer', 'man-db.timer']) {
    t.equal(text(`etc/systemd/system/${u}`), '/dev/null', `${u} masked: nothing on disk to scrub, trim, upgrade or back up`);
  }
  const keep = execFileSync(join(REPO, 'nodescripts/init/all/60-systemd'), [], { env: { ...ENV, ATTR_SYSTEMD_KEEP: 'fstrim.timer apt-daily.timer' }, encoding: 'utf8' });
  t.match(keep, /^PROVISIOND_SYSTEMD_MASK='e2scrub_reap\.service e2scrub_all\.timer apt-daily-upgrade\.timer dpkg-db-backup\.timer man-db\.timer'$/m, 'node attribute systemd.keep leaves the units it names alone');
  t.equal(text('etc/systemd/system/multi-user.target.wants/provisiond-ready.service'), '../provisiond-ready.service', 'the ready agent is a systemd unit');
  t.match(text('etc/systemd/system/provisiond-ready.service'), /ExecStart=\/sbin\/provisiond-ready/);
  t.match(text('etc/hosts'), /10\.0\.0\.7\tn0007/, '/etc/hosts');
  t.equal(text('etc/systemd/system/getty@tty1.service'), '/dev/null', 'no getty on tty1: the console is ttyS0 (its getty comes from systemd\'s generator)');
  t.equal((files.get('dev/console')?.mode ?? 0) & 0o170000, 0o020000, 'a console device for the kernel to open');
  t.equal(text('etc/vnfs-marker'), '(missing)', 'sanity: only what is in the VNFS');
  t.ok(files.has('bin/busybox'), 'the image itself comes first');
  t.match(out, /SKELETON_ONLY kernel=not really a kernel/, 'the stage-1 unpacked only the skeleton (the kernel, no busybox): the VNFS kernel unpacks the image');
  t.ok(hits.urls.some((u) => u.startsWith('/files/vnfs/sd/skeleton.cpio.gz.sha256')), 'getfile fetched the skeleton and checked it');
  t.ok(hits.urls.some((u) => /\/events\?stage=unpack&msg=sd%3A%20skeleton%20only/.test(u)), 'the timeline says the unpack was the skeleton only');

  t.match(out, /FAILED_RC=0/, 'a failing kexec -l still boots the node');
  t.match(out, /not booting the VNFS kernel \/boot\/vmlinuz-6\.1\.0-test-amd64: kexec -l failed: kexec_load failed: Operation not permitted/, 'and says why');
  t.match(out, /== boot3\nBOOT_ROOT=\/newroot3\nBOOT_INIT=\/sbin\/init\n/, 'by switch_root');
  t.match(out, new RegExp(`WHOLE3 hostname=n0007 id=${machineId}`), 'into the whole image, the nodescripts\' files kept');
  t.notMatch(out, /IMAGE3_LEFT/, 'the image freed');

  t.match(out, /NOKEXEC_RC=0/, 'without kexec the node still boots');
  t.match(out, /not booting the VNFS kernel \/boot\/vmlinuz-6\.1\.0-test-amd64: this stage-1 has no kexec .*switch_root on the stage-1 kernel/, 'and says why on the console');
  t.match(out, /== boot2\nBOOT_ROOT=\/newroot2\nBOOT_INIT=\/sbin\/init\n/, 'switch_root into the prepared root');
  t.notMatch(out, /IMAGE2_LEFT/, 'the image does not stay in memory');
  t.equal(/== getty2\n(.*)/.exec(out)?.[1], '/dev/null', 'the same systemd setup on the stage-1 kernel');
});
