import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { bearer, initCredential, startDaemon, text } from '../lib/daemon.js';

const MAC = '52:54:00:12:34:01';

t.test('the script streams: the first script output arrives before a slow later script ends', async (t) => {
  const h = await startDaemon(t);
  h.write('nodescripts/init/all/10-first', '#!/bin/sh\necho "echo first"\n', 0o755);
  h.write('nodescripts/init/all/20-slow', '#!/bin/sh\nsleep 4\necho "echo slow"\n', 0o755);
  const began = Date.now();
  const res = await fetch(`${h.base}/nodescripts/init?nodeid=${MAC}`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /^text\/x-shellscript/);
  const reader = res.body!.getReader();
  let seen = '';
  let firstAt = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += Buffer.from(value).toString();
    if (!firstAt && seen.includes('echo first')) firstAt = Date.now() - began;
  }
  const total = Date.now() - began;
  // Measured against the end rather than a fixed bound: the shared machine may be slow to spawn.
  t.ok(firstAt > 0 && firstAt <= total - 3000, `first script output after ${firstAt} ms, ${total - firstAt} ms before the slow one ended`);
  t.ok(total >= 4000, `whole script took ${total} ms`);
  t.match(seen, /# NODESCRIPT START[\s\S]*echo first[\s\S]*echo slow[\s\S]*# NODESCRIPT END/);
  const out = spawnSync('sh', ['-c', seen], { encoding: 'utf8' });
  t.equal(out.stdout, 'first\nslow\n', 'the node runs what it got');
});

t.test('concurrent requests each get their own node and environment; contact is recorded', async (t) => {
  // All test clients share 127.0.0.1: lift the per-address cap that protects a real master.
  const h = await startDaemon(t, '', { http: '  maxScriptRequestsPerAddress: 100\n' });
  h.write('nodescripts/init/all/10-who', '#!/bin/sh\necho "echo $NODENAME $NODEID $STATE $IPADDR"\n', 0o755);
  const macs = Array.from({ length: 24 }, (_, i) => `52:54:00:00:10:${i.toString(16).padStart(2, '0')}`);
  const bodies = await Promise.all(macs.map((m) => text(`${h.base}/nodescripts/init?nodeid=${m.replaceAll(':', '-').toLowerCase()}`)));
  const names = new Set<string>();
  bodies.forEach((b, i) => {
    t.equal(b.status, 200);
    const m = /echo (n\d{4}) ([0-9A-F:]+) init 127\.0\.0\.1/.exec(b.body);
    t.ok(m, `response ${i} names its node`);
    t.equal(m?.[2], macs[i]!.toUpperCase(), 'the nodeid in any notation reaches the scripts canonical');
    names.add(m![1]!);
  });
  t.equal(names.size, macs.length, 'auto-registration gave every node its own name');
  const node = await h.daemon.registry.getNodeByNodeid(macs[3]!);
  t.equal(node?.state, 'init');
  t.equal(node?.lastaddr, '127.0.0.1');
  t.ok(node!.lastcontact! > Date.now() - 60_000, 'last contact is now');
});

t.test('a disabled node: the shipped 00-init stops it with the reason, its iPXE script exits', async (t) => {
  const h = await startDaemon(t);
  h.write('nodescripts/init/all/00-init', readFileSync('nodescripts/init/all/00-init'), 0o755);
  await h.daemon.registry.addNode({ name: 'n0417', nodeid: MAC, enabled: false });
  const script = await text(`${h.base}/nodescripts/init?nodeid=${MAC}`);
  const run = spawnSync('sh', ['-c', script.body], { encoding: 'utf8' });
  t.equal(run.status, 1, 'the node script exits 1');
  t.match(run.stderr, /n0417 .*is disabled/);
  const ipxe = await text(`${h.base}/boot/${MAC.toLowerCase()}.ipxe`);
  t.match(ipxe.body, /^#!ipxe/);
  t.match(ipxe.body, /echo provisiond: node n0417 \(52:54:00:12:34:01\) is disabled/);
  t.match(ipxe.body, /\nexit\n/);
  t.notMatch(ipxe.body, /kernel /);
});

t.test('unknown nodes: auto-registration off gives a script saying so; other states are refused', async (t) => {
  const h = await startDaemon(t, 'defaults:\n  autoRegister: false\n');
  const res = await text(`${h.base}/nodescripts/init?nodeid=${MAC}`);
  t.equal(res.status, 200);
  const run = spawnSync('sh', ['-c', res.body], { encoding: 'utf8' });
  t.equal(run.status, 1);
  t.match(run.stderr, /52:54:00:12:34:01 is not a registered node and auto-registration is off/);
  t.equal(await h.daemon.registry.getNodeByNodeid(MAC), null, 'nothing registered');
  t.ok((await h.daemon.registry.listUnknown()).some((u) => u.nodeid === MAC && u.via === 'http'), 'recorded as unknown');
  const ready = await text(`${h.base}/nodescripts/ready?nodeid=52:54:00:12:34:02`);
  t.match(ready.body, /is not a registered node \(asked for state ready\)/);
  const ipxe = await text(`${h.base}/boot/${MAC}.ipxe`);
  t.match(ipxe.body, /not a registered node and auto-registration is off/);
  t.match(ipxe.body, /\nexit\n/);
});

t.test('without nodeid the node is found by its address; bad requests get 4xx with a reason', async (t) => {
  const h = await startDaemon(t);
  h.write('nodescripts/ready/all/10-me', '#!/bin/sh\necho "echo I am $NODENAME"\n', 0o755);
  const none = await text(`${h.base}/nodescripts/ready`);
  t.equal(none.status, 400);
  t.match(none.body, /no nodeid given and 127\.0\.0\.1 is not the address of a known node/);
  await h.daemon.registry.addNode({ name: 'c01', nodeid: MAC, ipaddr: '127.0.0.1' });
  const found = await text(`${h.base}/nodescripts/ready`, bearer(await initCredential(h.base, MAC)));
  t.equal(found.status, 200);
  t.match(found.body, /echo I am c01/);
  const bad = await text(`${h.base}/nodescripts/in%20it?nodeid=${MAC}`);
  t.equal(bad.status, 400);
  t.match(bad.body, /bad provisionary state/);
  const badMac = await text(`${h.base}/nodescripts/init?nodeid=zz:zz`);
  t.equal(badMac.status, 400);
  t.match(badMac.body, /not a hardware address/);
  const curl = await promisify(execFile)('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `X-Big: ${'a'.repeat(20000)}`, `${h.base}/healthz`], { encoding: 'utf8' });
  t.equal(curl.stdout, '431', 'oversized headers are refused');
  const long = await text(`${h.base}/files/${'a'.repeat(5000)}`);
  t.equal(long.status, 414, 'oversized URLs are refused');
});

t.test('one address may run only maxScriptRequestsPerAddress nodescript requests at once', async (t) => {
  const h = await startDaemon(t, '', { http: '  maxScriptRequestsPerAddress: 2\n' });
  h.write('nodescripts/init/all/10-slow', '#!/bin/sh\nsleep 1\necho "echo done"\n', 0o755);
  const all = await Promise.all([1, 2, 3].map((i) => text(`${h.base}/nodescripts/init?nodeid=52:54:00:00:20:0${i}`)));
  const statuses = all.map((r) => r.status).sort();
  t.same(statuses, [200, 200, 429]);
  const refused = all.find((r) => r.status === 429)!;
  t.match(refused.body, /too many nodescript requests from 127\.0\.0\.1 at once \(limit 2\)/);
  t.equal(refused.headers.get('retry-after'), '2');
  const after = await text(`${h.base}/nodescripts/init?nodeid=52:54:00:00:20:09`);
  t.equal(after.status, 200, 'served again once the others finished');
});

t.test('a nodescript response silent for longer than http.requestTimeout is not cut (queued in a boot storm)', async (t) => {
  const h = await startDaemon(t, '', { http: '  requestTimeout: 1\n' });
  h.write('nodescripts/init/all/10-quiet', '#!/bin/sh\nsleep 2.5\necho "echo finally"\n', 0o755);
  const res = await text(`${h.base}/nodescripts/init?nodeid=${MAC}`);
  t.equal(res.status, 200);
  t.match(res.body, /echo finally\n[\s\S]*# NODESCRIPT END/, 'the whole script arrived');
  const again = await text(`${h.base}/files/none`);
  t.equal(again.status, 404, 'the daemon still answers');
});
