import t from 'tap';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { startDaemon, text } from '../lib/daemon.js';
import { createTimelineRecorder } from '../../src/daemon/timeline.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger, silentLogger } from '../../src/log/logger.js';
import { SqliteRegistry } from '../../src/registry/sqlite/registry.js';

const run = promisify(execFile);
const MAC = '52:54:00:aa:04:17';

t.test('the timeline of a simulated boot lists every step in order, and node timeline prints it', async (t) => {
  const h = await startDaemon(t);
  h.write('tftp/vmlinuz', randomBytes(64 * 1024));
  h.write('tftp/initramfs.img', randomBytes(128 * 1024));
  h.write('vnfs/demo/image.cpio.gz', randomBytes(256 * 1024));
  h.write('nodescripts/init/all/10-hello', '#!/bin/sh\necho "echo hello"\n', 0o755);
  h.write('nodescripts/init/all/20-broken', '#!/bin/sh\nexit 3\n', 0o755);
  // The node holds 127.0.0.1 as its fixed address, so transfers by address are attributed to it.
  await h.daemon.registry.addNode({ name: 'n0417', nodeid: MAC, ipaddr: '127.0.0.1', vnfs: 'demo' });

  const ipxe = await text(`${h.base}/boot/${MAC}.ipxe`);
  t.match(ipxe.body, new RegExp(`kernel ${h.base}/boot/vmlinuz initrd=initramfs.img provisiond=${h.base} provisiond.nodeid=52:54:00:AA:04:17 provisiond.debug=0`));
  t.match(ipxe.body, new RegExp(`initrd ${h.base}/boot/initramfs.img`));
  t.equal((await fetch(`${h.base}/boot/vmlinuz`).then((r) => r.arrayBuffer())).byteLength, 64 * 1024);
  t.equal((await fetch(`${h.base}/boot/initramfs.img`).then((r) => r.arrayBuffer())).byteLength, 128 * 1024);
  const script = await text(`${h.base}/nodescripts/init?nodeid=${MAC}`);
  t.match(script.body, /nodescript 20-broken failed on the master \(exit 3\)/);
  // From here on the node presents the credential its init script carried.
  const cred = /^PROVISIOND_CREDENTIAL=([0-9a-f]{64});/m.exec(script.body)![1]!;
  // The node's client reports with busybox wget (GET form) and with POST.
  const post = await fetch(`${h.base}/nodes/${MAC.replaceAll(':', '-').toUpperCase()}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${cred}` },
    body: JSON.stringify({ stage: 'getfile', msg: 'vnfs/demo/image.cpio.gz 45%' }),
  });
  t.equal(post.status, 200);
  await fetch(`${h.base}/files/vnfs/demo/image.cpio.gz`).then((r) => r.arrayBuffer());
  await run('busybox', ['wget', '-q', '-O', '/dev/null', '--header', `Authorization: Bearer ${cred}`, `${h.base}/nodes/${MAC}/events?stage=switch-root&msg=`]);
  await run('curl', ['-sS', '-o', '/dev/null', '-H', `Authorization: Bearer ${cred}`, '--data-urlencode', 'stage=ready', '--data-urlencode', 'msg=up in demo', `${h.base}/nodes/${MAC}/events`]);
  const bad = await text(`${h.base}/nodes/${MAC}/events`, { headers: { authorization: `Bearer ${cred}` } });
  t.equal(bad.status, 400, 'an event without a stage is refused');
  t.match(bad.body, /stage is missing/);
  t.equal((await text(`${h.base}/nodes/not-a-mac/events?stage=x`)).status, 400);

  await h.daemon.close();
  const events = await (async () => {
    const { openRegistry } = await import('../../src/registry/open.js');
    const { silentLogger } = await import('../../src/log/logger.js');
    const reg = await openRegistry(h.daemon.config, silentLogger());
    try {
      return await reg.listEvents(MAC);
    } finally {
      await reg.close();
    }
  })();
  const steps = events.map((e) => `${e.source} ${e.stage}`);
  const expected = [
    'http ipxe-script',
    'http http vmlinuz',
    'http http initramfs.img',
    'http nodescript init',
    'http credential',
    'nodescript init 10-hello',
    'nodescript init 20-broken',
    'http nodescript init sent',
    'node getfile',
    'http http image.cpio.gz',
    'node switch-root',
    'node ready',
  ];
  t.same(steps, expected, 'every step, in order');
  t.notOk(events.find((e) => e.stage === 'init 20-broken')!.ok, 'the failed script is marked failed');
  t.match(events.find((e) => e.stage === 'init 20-broken')!.msg, /exit 3/);
  t.match(events.find((e) => e.stage === 'http vmlinuz')!.msg, /sent 64\.0 KiB in/);
  for (let i = 1; i < events.length; i++) t.ok(events[i]!.time >= events[i - 1]!.time, `step ${i} is not before step ${i - 1}`);

  const cli = await run('./bin/provisiond.js', ['--config', h.configPath, 'node', 'timeline', 'n0417']);
  const lines = cli.stdout.trim().split('\n');
  t.match(lines[0], /^n0417 \(52:54:00:AA:04:17\): 12 steps over/);
  t.match(cli.stdout, /!\s+nodescript\s+init 20-broken\s+exit 3/, 'the failure is flagged');
  t.match(lines[lines.length - 1], /^up: ready since .*, after 2 failed step\(s\), the first at .* in nodescript init 20-broken: exit 3/, 'the verdict: up, and what failed on the way');
  const stuck = await run('./bin/provisiond.js', ['--config', h.configPath, 'node', 'timeline', 'n0417', '-n', '4']);
  t.match(stuck.stdout.trim().split('\n').pop(), /^up: ready/, '--limit keeps the latest steps');
  const order = expected.map((s) => lines.findIndex((l) => l.includes(s.split(' ').slice(1).join(' '))));
  t.same([...order].sort((a, b) => a - b), order, 'printed in order');
  const byMac = await run('./bin/provisiond.js', ['--config', h.configPath, 'node', 'timeline', MAC.toLowerCase(), '--json']);
  t.equal(JSON.parse(byMac.stdout).events.length, 12, 'found by hardware address too');
  const { formatTimeline } = await import('../../src/cli/node/timeline.js');
  const cut = formatTimeline('n0417', events.slice(0, 8));
  t.match(cut.trim().split('\n').pop(), /^failed at .* in http nodescript init sent: served: .*1 script\(s\) failed$/, 'a boot that stopped after a failure says where and why');
  const unknown = await run('./bin/provisiond.js', ['--config', h.configPath, 'node', 'timeline', 'nope']).catch((e: { code: number; stderr: string }) => e);
  t.equal((unknown as { code: number }).code, 1);
  t.match((unknown as { stderr: string }).stderr, /no node named "nope"/);
});

t.test('events the registry refuses are said once in a while with their count, not once each', async (t) => {
  const log = memoryLogger();
  // A real registry, closed: every event it is handed is refused.
  const dir = mkdtempSync(join(tmpdir(), 'pvd-timeline-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const closed = SqliteRegistry.open({ path: join(dir, 'provisiond.db'), logger: silentLogger() });
  await closed.close();
  const record = createTimelineRecorder(closed, log);
  for (let i = 0; i < 500; i++) record({ nodeid: MAC, source: 'dhcp', stage: 'offer', msg: `offered 10.0.0.${i & 255}`, ok: true, addr: null });
  await new Promise((r) => setImmediate(r));
  const warned = log.lines.filter((l) => l.level === 'warn');
  t.equal(warned.length, 1, 'one warning for 500 events lost in a storm');
  t.match(warned[0], { msg: 'timeline: events not recorded', err: /closed/, lost: 1 }, 'with the reason and the count so far');
});
