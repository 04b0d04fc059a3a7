/**
 * The tftp service as the daemon starts it, on the real sqlite registry: pxelinux.cfg files rendered
 * per MAC from the registry at request time, the fixed-name iPXE chain script, packaged iPXE served
 * without copying, and transfers on the node's timeline. Fetched with tftp-hpa's client.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { memoryLogger } from '../../src/log/logger.js';
import { openRegistry } from '../../src/registry/open.js';
import type { TimelineEvent } from '../../src/registry/types.js';
import { startTftp } from '../../src/daemon/tftp.js';
import { gate, missingCommands } from '../lib/gate.js';

if (!gate(t, missingCommands(['tftp']).length ? 'tftp daemon test: needs tftp-hpa' : null)) process.exit(0);

const statedir = mkdtempSync(join(tmpdir(), 'pvd-tftp-daemon-'));
t.teardown(() => rmSync(statedir, { recursive: true, force: true }));
mkdirSync(join(statedir, 'tftp'));
const config = parseConfig(`statedir: ${statedir}\nmaster: 10.1.2.3\nhttp:\n  port: 8088\ntftp:\n  listen: 127.0.0.1\n  port: 0\n`, 'test.yaml', statedir);
const log = memoryLogger();
const registry = await openRegistry(config, log);
t.teardown(() => registry.close());
await registry.addNode({ name: 'n0001', nodeid: '52:54:00:00:00:01', ipaddr: '127.0.0.1' });
await registry.addNode({ name: 'n0002', nodeid: '52:54:00:00:00:02' });
await registry.addNode({ name: 'n0003', nodeid: '52:54:00:00:00:03', enabled: false });
const events: TimelineEvent[] = [];
const service = await startTftp({ config, log, registry, services: new Map(), timeline: (e) => events.push({ time: Date.now(), ...e }) });
t.teardown(() => service?.close());
const port = Number(service!.address.split(':').pop());

function get(name: string): Promise<string> {
  const dest = join(statedir, `got-${name.replaceAll('/', '_')}`);
  return new Promise((resolve, reject) =>
    execFile('tftp', ['127.0.0.1', String(port), '-m', 'binary', '-c', 'get', name, dest], (err, stdout) => {
      if (err || /Error/.test(stdout)) reject(new Error(`tftp get ${name}: ${stdout || err?.message}`));
      else resolve(readFileSync(dest, 'latin1'));
    }),
  );
}

t.test('pxelinux.cfg/01-<mac> differs per node as the registry says', async (t) => {
  const a = await get('pxelinux.cfg/01-52-54-00-00-00-01');
  const b = await get('pxelinux.cfg/01-52-54-00-00-00-02');
  t.match(a, /KERNEL vmlinuz/);
  t.match(a, /APPEND initrd=initramfs.img provisiond=http:\/\/10\.1\.2\.3:8088 provisiond\.nodeid=52:54:00:00:00:01/);
  t.match(b, /provisiond\.nodeid=52:54:00:00:00:02/);
  t.not(a, b);
  t.match(await get('pxelinux.cfg/01-52-54-00-00-00-03'), /LOCALBOOT 0/, 'a disabled node boots its disk');
  await registry.updateNode('n0002', { boot: 'local' });
  t.match(await get('pxelinux.cfg/01-52-54-00-00-00-02'), /LOCALBOOT 0/, 'boot local takes effect on the next request, nothing regenerated');
  await t.rejects(get('pxelinux.cfg/01-52-54-00-00-00-99'), /file not found/, 'unknown MAC: not found, pxelinux moves on to default');
  t.match(await get('pxelinux.cfg/default'), /not a registered node[\s\S]*LOCALBOOT 0/);
});

t.test('the fixed-name iPXE script chains to HTTP', async (t) => {
  t.match(await get('boot.ipxe'), /^#!ipxe\nchain http:\/\/10\.1\.2\.3:8088\/boot\/\$\{mac\}\.ipxe/);
});

t.test('packaged iPXE is served without copying, and the transfer is on the node timeline', { skip: existsSync('/usr/lib/ipxe/undionly.kpxe') ? false : 'Debian package ipxe not installed' }, async (t) => {
  const got = await get('undionly.kpxe');
  const sha = (s: Buffer) => createHash('sha256').update(s).digest('hex');
  t.equal(sha(Buffer.from(got, 'latin1')), sha(readFileSync('/usr/lib/ipxe/undionly.kpxe')));
  await new Promise((r) => setTimeout(r, 100));
  const ev = events.find((e) => e.stage === 'tftp undionly.kpxe');
  t.equal(ev?.nodeid, '52:54:00:00:00:01', 'the client address maps to the node holding it');
  t.equal(ev?.source, 'tftp');
  t.match(ev?.msg ?? '', /^sent \d+\.\d KiB in/);
  t.ok(log.lines.some((l) => l.msg === 'tftp transfer finished' && l.file === 'undionly.kpxe'), 'transfer logged');
  t.ok(log.lines.some((l) => l.msg === 'tftp transfer finished' && l.file === 'undionly.kpxe' && l.engine === 'native'), 'the 72 KiB loader was moved by the native pump');
});
