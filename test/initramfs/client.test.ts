/**
 * The stage-1 client (initramfs/lib/provisiond/client) run by the static busybox of the initramfs,
 * chrooted into a node network namespace joined by a veth to a "master" namespace. The master side is
 * real busybox udhcpd for DHCP and, for HTTP, a small stub server started in the master namespace
 * (it serves /nodescripts/init and records /nodes/<MAC>/events; the daemon's own tests cover the
 * real endpoints). Proves: DHCP on the interface with link, the master found from the DHCP server
 * identifier or from provisiond=, the init nodescript fetched with the interface's MAC and run, the
 * stages reported, retries with backoff, and the reason + reboot after the last failure.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync, cpSync, existsSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { fetchBusybox } from '../../src/vnfs/debian-fetch.js';
import { makeBusyboxRootfs } from '../../src/vnfs/build.js';
import { REPO } from '../lib/paths.js';
import { rootMissing, skipUnlessCi } from '../lib/gate.js';
import { testLab } from '../lib/netns.js';
import { makeStatedir } from '../lib/statedir.js';

const skip = skipUnlessCi(rootMissing('network namespaces, chroot'));
const MAC = '52:54:00:77:00:01';

const STUB = `
import { createServer } from 'node:http';
import { appendFileSync, readFileSync } from 'node:fs';
const [log, modeFile] = process.argv.slice(2);
createServer((req, res) => {
  appendFileSync(log, req.url + '\\n');
  appendFileSync(log + '.auth', (req.headers.authorization ?? '-') + ' ' + req.url + '\\n');
  const url = new URL(req.url, 'http://x');
  if (url.pathname === '/nodescripts/init') {
    const mode = readFileSync(modeFile, 'utf8').trim();
    const body = mode === 'ok'
      ? '#!/bin/sh\\nPROVISIOND_CREDENTIAL=${'c0ffee'.repeat(10)}abcd; export PROVISIOND_CREDENTIAL # this boot\\necho "NODE-SCRIPT-RAN $PROVISIOND_NODEID $PROVISIOND_IP/$PROVISIOND_PREFIX via $PROVISIOND_ROUTER dns $PROVISIOND_DNS"\\nmkdir -p /run/provisiond\\nprintf "BOOT_ROOT=/newroot\\\\n" > /run/provisiond/boot\\n'
      : '#!/bin/sh\\necho "provisiond: nodescript 20-foo failed on the master (exit 3)" >&2\\nexit 3\\n';
    res.writeHead(200, { 'content-type': 'text/x-shellscript' }).end(body);
    return;
  }
  res.writeHead(url.pathname.endsWith('/events') ? 204 : 404).end();
}).listen(8080, '10.77.0.1', () => console.log('listening'));
`;

function run(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ status: number | null; out: string }> {
  const child = spawn(args[0]!, args.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return once(child, 'close').then(([status]) => {
    clearTimeout(timer);
    return { status: status as number | null, out };
  });
}

t.test('the stage-1 client in a namespace with a fake network', { skip, timeout: 300_000 }, async (t) => {
  const dir = makeStatedir(t, {}, { prefix: 'pvd-i7-' });
  const lab = testLab(t, 'pvd-i7');
  const [m, n] = lab.nss('m', 'n');
  // The node's interfaces stay down: the client brings up those it tries.
  lab.link({ ns: m, dev: 'm0', addr: '10.77.0.1/24' }, { ns: n, dev: 'eth0', mac: MAC, up: false });
  // a second interface without link (its peer stays down on the master side): the client must skip it
  lab.link({ ns: n, dev: 'nolink0', up: false }, { ns: m, dev: 'x0', up: false });
  // and one with link but no DHCP server behind it, sorted before eth0: the client must go on to eth0
  lab.link({ ns: n, dev: 'aaa0', up: false }, { ns: m, dev: 'y0' });

  writeFileSync(join(dir, 'udhcpd.conf'), [
    'start 10.77.0.100', 'end 10.77.0.110', 'interface m0', `lease_file ${join(dir, 'leases')}`, `pidfile ${join(dir, 'udhcpd.pid')}`,
    'option subnet 255.255.255.0', 'option router 10.77.0.1', 'option dns 10.77.0.53', 'option domain cluster.test', 'option lease 600', '',
  ].join('\n'));
  lab.spawn(m, 'busybox', ['udhcpd', '-f', join(dir, 'udhcpd.conf')], { stdio: 'ignore' });
  writeFileSync(join(dir, 'stub.mjs'), STUB);
  writeFileSync(join(dir, 'mode'), 'ok');
  writeFileSync(join(dir, 'requests'), '');
  const stub = lab.spawn(m, process.execPath, [join(dir, 'stub.mjs'), join(dir, 'requests'), join(dir, 'mode')], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(stub.stdout!, 'data');

  // The node: the initramfs's busybox and client files.
  const root = join(dir, 'root');
  await makeBusyboxRootfs(root, await fetchBusybox(), join(dir, 'no-recipe'));
  cpSync(join(REPO, 'initramfs/lib/provisiond'), join(root, 'lib/provisiond'), { recursive: true });
  mkdirSync(join(root, 'newroot'));
  const boot = (cmdline: string): Promise<{ status: number | null; out: string }> => {
    writeFileSync(join(root, 'cmdline'), `${cmdline}\n`);
    rmSync(join(root, 'run'), { recursive: true, force: true });
    mkdirSync(join(root, 'run'));
    const inner = `mount -t sysfs sysfs ${root}/sys && mount -t proc proc ${root}/proc && exec chroot ${root} /bin/sh /lib/provisiond/client`;
    return run(['ip', 'netns', 'exec', n, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', inner], {
      PATH: '/sbin:/bin:/usr/sbin:/usr/bin', CMDLINE_FILE: '/cmdline', MAX_TRIES: '3', RETRY_FIRST: '1', RETRY_MAX: '2', REBOOT_DELAY: '1',
      REBOOT_CMD: 'echo REBOOT-NOW', LINK_WAIT: '5', DHCP_TRIES: '2', DHCP_TIMEOUT: '1',
    }, 120_000);
  };
  const requests = (): string[] => readFileSync(join(dir, 'requests'), 'utf8').split('\n').filter(Boolean);
  const stages = (): string[] => requests().filter((u) => u.includes('/events?')).map((u) => decodeURIComponent(new URL(u, 'http://x').searchParams.get('stage') ?? ''));

  // 1. master from the DHCP server identifier, script runs, stages reported
  const ok = await boot('console=ttyS0 provisiond.debug=0');
  t.equal(ok.status, 0, `the client succeeds\n${ok.out}`);
  t.match(ok.out, new RegExp(`NODE-SCRIPT-RAN ${MAC} 10\\.77\\.0\\.1\\d\\d/24 via 10\\.77\\.0\\.1 dns 10\\.77\\.0\\.53`), 'the init script ran with the lease in its environment');
  t.match(ok.out, /DHCP on aaa0[\s\S]*DHCP on eth0/, 'DHCP on each interface with link until one answers');
  t.notMatch(ok.out, /DHCP on nolink0/, 'an interface without link is not tried');
  t.ok(requests().includes(`/nodescripts/init?nodeid=${MAC}`), 'asked for the init nodescript with the MAC of the leased interface');
  t.same(stages(), ['dhcp', 'got-script', 'init-script-start', 'script-exit'], 'stages reported in order');
  const auth = readFileSync(join(dir, 'requests.auth'), 'utf8').split('\n').filter((l) => l.includes('/events?'));
  t.ok(auth.length === 4 && auth.every((l) => l.startsWith(`Bearer ${'c0ffee'.repeat(10)}abcd /`)), `every report carries the credential the init script handed over: ${auth.join(' | ')}`);
  t.equal(statSync(join(root, 'run/provisiond/credential')).mode & 0o777, 0o600, 'kept readable by root only');
  t.equal(statSync(join(root, 'run/provisiond/init.sh')).mode & 0o777, 0o600, 'and so is the script that carries it');
  t.ok(existsSync(join(root, 'run')), 'ran');

  // 2. master from provisiond=, the script fails: retries with backoff, then the reason and the reboot
  writeFileSync(join(dir, 'requests'), '');
  writeFileSync(join(dir, 'mode'), 'fail');
  const started = Date.now();
  const bad = await boot(`provisiond=http://10.77.0.1:8080 provisiond.tries=3 provisiond.nodeid=${MAC.replaceAll(':', '-')}`);
  const took = (Date.now() - started) / 1000;
  t.not(bad.status, 0, 'the client gives up');
  t.notMatch(bad.out, /DHCP on aaa0/, 'the interface named by provisiond.nodeid is tried first');
  t.match(bad.out, /attempt 1\/3 failed: the init nodescript failed \(exit 3\)/);
  t.match(bad.out, /trying again in 1 s[\s\S]*trying again in 2 s/, 'the wait doubles');
  t.match(bad.out, /FAILED: the init nodescript failed \(exit 3\)/, 'the reason is printed');
  t.match(bad.out, /rebooting in +1 s, press Enter for a shell/, 'countdown offering a shell');
  t.match(bad.out, /REBOOT-NOW/, 'then it reboots');
  t.ok(took >= 3, `backoff waited (${took.toFixed(1)} s)`);
  t.equal(requests().filter((u) => u.startsWith('/nodescripts/init')).length, 3, 'three attempts');
  t.same(stages().filter((s) => s === 'retry').length, 3, 'each failed attempt reported');
  t.equal(stages().pop(), 'failed', 'the final failure reported');
});
