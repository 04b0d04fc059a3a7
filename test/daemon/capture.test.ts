/**
 * Capture without a VM: a real daemon (admin API and node-facing HTTP), and a fake node made of
 * real peers. Its "ready agent" is curl holding the long-poll open; its root file system is a small
 * busybox tree in a temp folder, and the capture script the master hands out runs there under
 * chroot with busybox sh, tar, find and wget: exactly the demo VNFS's tools (needs root for chroot).
 * Also: the route's codes and roles, the upload URL's refusals (credential, reuse), a cut upload and
 * a hostile tar leaving no VNFS and no staging folder.
 */
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tar from 'tar-stream';
import { initCredential } from '../lib/daemon.js';
import { fetchBusybox } from '../../src/vnfs/debian-fetch.js';
import { startApiDaemon, type ApiHarness } from '../api/lib/harness.js';
import type { Teardown } from '../lib/statedir.js';

const run = promisify(execFile);
const NODE = '52:54:00:ca:00:01';
const isRoot = process.getuid?.() === 0;

interface Task {
  id: string;
  action: string;
  status: string;
  result: string;
  nodes: Array<{ node: string; phase: string | null; status: string; result: string; messages: Array<{ message: string; error: boolean }> }>;
}

async function setup(t: Teardown): Promise<{ h: ApiHarness; cred: string }> {
  const h = await startApiDaemon(t);
  await h.daemon.registry.addNode({ name: 'n0001', nodeid: NODE, ipaddr: '127.0.0.1' });
  const cred = await initCredential(h.base, NODE);
  return { h, cred };
}

/** Polls the task until `done(task)` (bounded: 30 s). */
async function until(h: ApiHarness, id: string, done: (task: Task) => boolean): Promise<Task> {
  for (let i = 0; i < 300; i++) {
    const task = (await h.viewer.get(`/tasks/${id}`)).body as Task;
    if (done(task)) return task;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`task ${id}: condition not met in 30 s`);
}
const finished = (task: Task) => task.status === 'complete' || task.status === 'terminated';

/** The agent's long-poll, with curl: the script of the waiting action (or '' on 204). */
async function poll(h: ApiHarness, cred: string, wait = 10): Promise<{ code: string; script: string }> {
  const { stdout } = await run('curl', ['-sS', '-m', '30', '-H', `Authorization: Bearer ${cred}`, '-w', '\n%{http_code}', `${h.base}/nodes/${NODE}/actions?wait=${wait}`]);
  const nl = stdout.lastIndexOf('\n');
  return { code: stdout.slice(nl + 1), script: stdout.slice(0, nl) };
}

const uploadUrl = (script: string): string => /^URL='([^']+)'$/m.exec(script)![1]!;

/** A tiny busybox root file system: what the demo VNFS has, plus things a capture must leave out. */
async function fakeRoot(t: Teardown, cred: string): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'pvd-capture-root-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  for (const d of ['bin', 'etc/provisiond', 'var/cache/apt', 'var/lib', 'tmp', 'proc/1', 'run', 'dev', 'root']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(await fetchBusybox(), join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  for (const a of ['sh', 'tar', 'find', 'wget', 'grep', 'rm', 'mkdir', 'timeout', 'cat', 'wc', 'nc']) symlinkSync('busybox', join(root, 'bin', a));
  writeFileSync(join(root, 'etc/provisiond/credential'), `${cred}\n`);
  writeFileSync(join(root, 'etc/marker'), 'changed on the node\n');
  symlinkSync('/etc/marker', join(root, 'root/marker-link'));
  writeFileSync(join(root, 'var/cache/apt/big.bin'), 'cache');
  writeFileSync(join(root, 'var/lib/keep'), 'state');
  writeFileSync(join(root, 'tmp/junk'), 'temporary');
  writeFileSync(join(root, 'proc/1/status'), 'not a real proc');
  writeFileSync(join(root, 'run/pid'), '1');
  return root;
}

async function noLitter(t: { notOk(v: unknown, m: string): void; same(a: unknown, b: unknown, m: string): void }, h: ApiHarness, vnfs: string): Promise<void> {
  t.notOk(existsSync(join(h.statedir, 'vnfs', vnfs)), `no vnfs ${vnfs}`);
  t.same(readdirSync(join(h.statedir, 'vnfs')).filter((f) => f.startsWith('.capture-')), [], 'no staging folder left');
}

t.test('the route: roles, 404, 422 with the field, 409, idempotency', async (t) => {
  const { h } = await setup(t);
  mkdirSync(join(h.statedir, 'vnfs/taken/rootfs'), { recursive: true });
  t.equal((await h.operator.post('/nodes/n0001/capture', { vnfs: 'new1' })).status, 403, 'an operator may not create a VNFS');
  t.equal((await h.admin.post('/nodes/n9999/capture', { vnfs: 'new1' })).status, 404, 'unknown node');
  const bad = await h.admin.post('/nodes/n0001/capture', { vnfs: 'bad/name' });
  t.equal(bad.status, 422, 'bad name');
  t.match(bad.body, { error: { field: 'body.vnfs' } });
  const glob = await h.admin.post('/nodes/n0001/capture', { vnfs: 'new1', exclude: ['var/cache'] });
  t.equal(glob.status, 422, 'a relative exclude glob');
  t.match(glob.body, { error: { field: 'body.exclude', message: /exclude\[0\] "var\/cache": expected an absolute path glob/ } });
  const taken = await h.admin.post('/nodes/n0001/capture', { vnfs: 'taken' });
  t.equal(taken.status, 409, 'the VNFS exists');
  t.match(taken.body, { error: { message: /vnfs taken exists already/ } });
  const first = await h.admin.post('/nodes/n0001/capture', { vnfs: 'new1', timeout: 60 }, { headers: { 'Idempotency-Key': 'k1' } });
  t.equal(first.status, 202);
  const task = first.body as Task;
  t.match(task, { action: 'capture', nodes: [{ node: 'n0001' }] });
  t.equal(first.headers.get('location'), `/api/v1/tasks/${task.id}`);
  const again = await h.admin.post('/nodes/n0001/capture', { vnfs: 'new1', timeout: 60 }, { headers: { 'Idempotency-Key': 'k1' } });
  t.equal((again.body as Task).id, task.id, 'a retry with the same key gets the same task');
  t.equal(again.headers.get('idempotent-replayed'), 'true');
  const waiting = await until(h, task.id, (x) => x.nodes[0]!.phase === 'request');
  t.match(waiting.nodes[0]!.messages.at(-1)!.message, /request: waiting for the ready agent of n0001/);
  t.equal((await h.operator.post(`/tasks/${task.id}/cancel`)).status, 202, 'cancelled');
  const ended = await until(h, task.id, finished);
  t.equal(ended.status, 'terminated');
  await noLitter(t, h, 'new1');
});

t.test('a capture completes: long-poll, busybox script under chroot, checked import, image', { skip: !isRoot && 'chroot needs root' }, async (t) => {
  const { h, cred } = await setup(t);
  const root = await fakeRoot(t, cred);
  // The agent's long-poll is open before the capture is asked: it must answer at once.
  const began = Date.now();
  const polling = poll(h, cred, 30);
  await new Promise((r) => setTimeout(r, 300));
  const r = await h.admin.post('/nodes/n0001/capture', { vnfs: 'captured', exclude: ['/var/cache/*'] });
  t.equal(r.status, 202);
  const id = (r.body as Task).id;
  const { code, script } = await polling;
  t.equal(code, '200', 'the long-poll answers with the action');
  t.ok(Date.now() - began < 10_000, `at once, not at the poll's end (${Date.now() - began} ms)`);
  t.match(script, /^#!\/bin\/sh\n# provisiond: capture this node's root file system as vnfs captured/);
  await until(h, id, (x) => x.nodes[0]!.phase === 'upload');

  writeFileSync(join(root, 'action.sh'), script);
  const out = await run('/usr/sbin/chroot', [root, '/bin/sh', '/action.sh'], { env: { PATH: '/bin' } }).catch((err: { stdout: string; stderr: string }) => err);
  const task = await until(h, id, finished);
  t.match(out.stdout, /vnfs captured: \d+ entries/, `the node is told what was made (${out.stderr}; ${task.nodes[0]!.messages.at(-1)!.message})`);
  t.match(task, { status: 'complete', result: 'success' });
  const msgs = task.nodes[0]!.messages.map((m) => m.message);
  t.match(msgs, [/^request:/, /^upload: the agent took/, /^upload: \d+ bytes received, complete/, /^import: vnfs captured: \d+ entries/, /^image: building/, /^captured as vnfs captured:/]);

  const rootfs = join(h.statedir, 'vnfs/captured/rootfs');
  t.equal(readFileSync(join(rootfs, 'etc/marker'), 'utf8'), 'changed on the node\n', 'the change is in the VNFS');
  t.equal(readFileSync(join(rootfs, 'var/lib/keep'), 'utf8'), 'state', 'other files too');
  t.ok(existsSync(join(rootfs, 'bin/busybox')), 'busybox');
  t.equal(readlinkSync(join(rootfs, 'root/marker-link')), '/etc/marker', 'an absolute link inside the root is kept');
  t.notOk(existsSync(join(rootfs, 'var/cache/apt')), 'the exclude glob left /var/cache/* out');
  for (const d of ['tmp', 'proc', 'run', 'dev']) t.same(readdirSync(join(rootfs, d)), [], `/${d} is there, empty`);
  t.notOk(existsSync(join(rootfs, 'action.sh.tar')), 'nothing of the upload itself');
  t.ok(existsSync(join(h.statedir, 'vnfs/captured/image.cpio.gz')), 'its image is built');
  t.notOk(existsSync(join(root, 'tmp/provisiond-capture.tar')), 'the node removed its tar file');
  await noLitter(t, h, 'none');

  // The one-time URL works once; and never without the node's credential.
  const url = uploadUrl(script);
  const put = (args: string[]) => run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '--data-binary', 'x', ...args, url]).then((x) => x.stdout);
  t.equal(await put([]), '401', 'no credential: 401');
  t.equal(await put(['-H', `Authorization: Bearer ${'0'.repeat(64)}`]), '403', 'wrong credential: 403');
  t.equal(await put(['-H', `Authorization: Bearer ${cred}`]), '404', 'used once, its task ended: the URL is gone');
  await h.daemon.registry.flush();
  const steps = (await h.daemon.registry.listEvents(NODE)).filter((e) => e.stage === 'capture').map((e) => e.msg);
  t.match(steps, [/^requested as vnfs captured/, /^upload done: /, /^vnfs captured ready: image/]);
});

/** Starts a capture and takes it as the agent would: its upload URL. */
async function started(h: ApiHarness, cred: string, vnfs: string): Promise<{ id: string; url: string }> {
  const r = await h.admin.post('/nodes/n0001/capture', { vnfs });
  const id = (r.body as Task).id;
  const { script } = await poll(h, cred);
  return { id, url: uploadUrl(script) };
}

t.test('a cut upload: the task fails with the reason, no VNFS, no staging folder', async (t) => {
  const { h, cred } = await setup(t);
  const { id, url } = await started(h, cred, 'cut');
  // A real tar of this repository's src/, announced whole, cut after 64 KiB.
  const whole = await new Promise<Buffer>((resolve, reject) => {
    const c = spawn('tar', ['-C', join(import.meta.dirname, '../../src'), '-cf', '-', '.']);
    const parts: Buffer[] = [];
    c.stdout.on('data', (d: Buffer) => parts.push(d));
    c.on('error', reject);
    c.on('close', () => resolve(Buffer.concat(parts)));
  });
  t.ok(whole.length > 200_000, 'a tar of some size');
  const u = new URL(url);
  await new Promise<void>((resolve) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'PUT', headers: { Authorization: `Bearer ${cred}`, 'Content-Length': String(whole.length) } });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.write(whole.subarray(0, 65536), () => setTimeout(() => req.destroy(), 200));
  });
  const task = await until(h, id, finished);
  t.match(task, { status: 'complete', result: 'failure' });
  t.match(task.nodes[0]!.messages.at(-1)!.message, /^upload: .*(cut short|aborted)/);
  await noLitter(t, h, 'cut');
  await h.daemon.registry.flush();
  const steps = (await h.daemon.registry.listEvents(NODE)).filter((e) => e.stage === 'capture');
  t.match(steps.at(-1), { ok: false, msg: /^failed: / }, 'the failure is in the timeline');
});

/** A tar whose entries are `entries`, as bytes. */
async function tarOf(entries: Array<Partial<tar.Header> & { name: string; body?: string }>): Promise<Buffer> {
  const pack = tar.pack();
  const parts: Buffer[] = [];
  pack.on('data', (d) => parts.push(d as Buffer));
  for (const { body, ...h } of entries) await new Promise<void>((resolve, reject) => pack.entry(h, body ?? '', (err) => (err ? reject(err) : resolve())));
  pack.finalize();
  await new Promise<void>((r) => pack.on('end', () => r()));
  return Buffer.concat(parts);
}

t.test('hostile tars are refused like vnfs import refuses them', async (t) => {
  const { h, cred } = await setup(t);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['dotdot', await tarOf([{ name: 'etc/ok', body: 'x' }, { name: '../../escape', body: 'x' }]), /escapes the capsule/],
    ['abslink', await tarOf([{ name: 'etc/ok', body: 'x' }, { name: 'etc/passwd', type: 'link', linkname: '/etc/passwd' }]), /absolute path/],
    ['outlink', await tarOf([{ name: 'etc/evil', type: 'symlink', linkname: '../../../../etc/shadow' }]), /leaves the capsule/],
  ];
  for (const [vnfs, body, why] of cases) {
    const { id, url } = await started(h, cred, vnfs);
    const tmp = join(h.statedir, `${vnfs}.tar`);
    writeFileSync(tmp, body);
    const { stdout } = await run('curl', ['-sS', '-w', '\n%{http_code}', '-T', tmp, '-H', `Authorization: Bearer ${cred}`, url]);
    t.match(stdout, /upload refused: capturing vnfs \S+: entry .*\n+422$/, `${vnfs}: 422 with the reason`);
    const task = await until(h, id, finished);
    t.match(task, { result: 'failure' });
    t.match(task.nodes[0]!.messages.at(-1)!.message, why, `${vnfs}: the task says why`);
    await noLitter(t, h, vnfs);
  }
});
