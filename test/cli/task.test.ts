/**
 * `provisiond task list|show|cancel|wait` against a real registry file, with tasks made by the CLI
 * itself (`power`, `reload`) on the exec driver's fixture scripts (real processes); the cancel comes
 * from another process than the one running the task.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log/logger.js';
import { openRegistry } from '../../src/registry/open.js';
import type { TaskRecord } from '../../src/registry/types.js';

const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURES = resolve(import.meta.dirname, '../power/fixtures');
const state = mkdtempSync(join(tmpdir(), 'pvd-task-cli-'));
t.teardown(() => rmSync(state, { recursive: true, force: true }));
const cfgFile = join(state, 'provisiond.yaml');
writeFileSync(cfgFile, `statedir: ${state}\npower:\n  concurrency: 4\n  timeout: 90\n  retries: 0\n`);
const config = parseConfig(readFileSync(cfgFile, 'utf8'), cfgFile);

function scripts(dirName: string, verbs: Record<string, string>): string {
  const dir = join(state, dirName);
  mkdirSync(dir, { recursive: true });
  for (const [verb, body] of Object.entries(verbs)) {
    writeFileSync(join(dir, verb), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, verb), 0o755);
  }
  return dir;
}
const mac = (i: number) => `52:54:00:00:02:${i.toString(16).padStart(2, '0')}`.toUpperCase();
const reg = await openRegistry(config, silentLogger());
for (let i = 1; i <= 3; i++) await reg.addNode({ name: `n${i}`, nodeid: mac(i), vnfs: 'demo', attrs: { 'power.driver': 'exec', 'power.dir': join(FIXTURES, 'exec'), 'power.statefile': join(state, `n${i}`) } });
await reg.addNode({ name: 'bad1', nodeid: mac(10), attrs: { 'power.driver': 'exec', 'power.dir': scripts('broken', { on: 'echo "pdu 7 refused" >&2; exit 3' }) } });
await reg.addNode({ name: 'slow1', nodeid: mac(11), attrs: { 'power.driver': 'exec', 'power.dir': scripts('slow', { on: 'sleep 60' }) } });
await reg.close();

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/provisiond.js'), '-c', cfgFile, ...args], { encoding: 'utf8', timeout: 120000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const taskId = (stderr: string) => /^task (\S+)$/m.exec(stderr)?.[1] ?? '';

t.test('power makes a task; list, show and wait read it from the registry', async (t) => {
  const r = cli('power', 'on', 'n[1-3]', 'bad1');
  t.equal(r.status, 1, 'one node failed');
  t.match(r.stdout, /^bad1 {2}FAILED: .*broken\/on bad1: exit 3: pdu 7 refused \(\d+\.\ds\)$/m);
  t.match(r.stdout, /^n1 {4}on ok \(\d+\.\ds\)$/m);
  const id = taskId(r.stderr);
  t.ok(id, 'the task id is said on stderr');

  const list = cli('task', 'list');
  t.equal(list.status, 0);
  t.match(list.stdout, /^ID\s+STATUS\s+RESULT\s+NODES\s+BY\s+CREATED\s+WHAT$/m);
  t.match(list.stdout, new RegExp(`^${id}\\s+complete\\s+partial_success\\s+3/4 ok\\s+cli:\\S+\\s+.*power on n\\[1-3\\],bad1$`, 'm'));
  const json = JSON.parse(cli('task', 'list', '--json').stdout) as TaskRecord[];
  t.equal(json[0]?.id, id, 'newest first');
  t.equal(json[0]?.nodes.length, 4);

  const show = cli('task', 'show', id);
  t.equal(show.status, 0);
  t.match(show.stdout, `task ${id}: power on n[1-3],bad1`);
  t.match(show.stdout, /status complete, result partial_success; by cli:/);
  t.match(show.stdout, /^bad1\s+complete\s+failure\s+-\s+.*exit 3: pdu 7 refused$/m);
  const shown = JSON.parse(cli('task', 'show', id, '--json').stdout) as TaskRecord;
  t.same(shown, json[0], 'show --json is the stored record');

  const wait = cli('task', 'wait', id);
  t.equal(wait.status, 1, 'partial success is not success');
  t.equal(wait.stdout, `task ${id}: complete, result partial_success\n`);
  const off = cli('power', 'off', 'n[1-3]');
  t.equal(off.status, 0);
  const ok = cli('task', 'wait', taskId(off.stderr));
  t.equal(ok.status, 0, 'a successful task: exit 0');

  const none = cli('task', 'show', 'nope');
  t.equal(none.status, 1);
  t.equal(none.stderr, 'provisiond: no task "nope"\n');
});

t.test('task cancel from another process: the running power call is aborted, the task ends terminated', async (t) => {
  const child = spawn(process.execPath, [join(ROOT, 'bin/provisiond.js'), '-c', cfgFile, 'power', 'on', 'slow1', 'n1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const end = Date.now() + 20_000;
  while (!taskId(err) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  const id = taskId(err);
  t.ok(id);
  // Wait until the slow call is running, then cancel from this (other) process.
  await new Promise((r) => setTimeout(r, 700));
  const t0 = Date.now();
  const cancel = cli('task', 'cancel', id);
  t.equal(cancel.status, 0, cancel.stderr);
  t.equal(cancel.stdout, `task ${id}: terminated, result partial_success\n`, 'n1 had powered on, slow1 was cut');
  t.equal(await exited, 1, 'the power command exits non-zero');
  t.ok(Date.now() - t0 < 15_000, 'the 60 s call did not run to its end');
  t.match(out, /^slow1 {2}FAILED: cancelled by cli:\S+/m);
  const wait = cli('task', 'wait', id);
  t.equal(wait.status, 1, 'terminated is not success');
  const rec = JSON.parse(cli('task', 'show', id, '--json').stdout) as TaskRecord;
  t.match(rec.cancelRequested, { by: /^cli:/ });
  t.equal(rec.nodes.find((n) => n.node === 'slow1')?.status, 'terminated');
});

t.test('Ctrl-C during power cancels the task: the call is aborted, the task ends terminated', async (t) => {
  const child = spawn(process.execPath, [join(ROOT, 'bin/provisiond.js'), '-c', cfgFile, 'power', 'on', 'slow1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  const end = Date.now() + 20_000;
  while (!taskId(err) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 500));
  child.kill('SIGINT');
  t.equal(await exited, 1);
  t.match(err, /cancelling task \S+ \(Ctrl-C again to leave it as it is\)/);
  t.match(out, /^slow1 {2}FAILED: cancelled by cli:\S+/m);
  const rec = JSON.parse(cli('task', 'show', taskId(err), '--json').stdout) as TaskRecord;
  t.equal(rec.status, 'terminated');
});

t.test('a reload without --wait leaves its task waiting; task wait takes it over and sees the node ready', async (t) => {
  const r = cli('reload', 'n2');
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^n2 {2}powered on to boot pxe \(\d+\.\ds\)$/m);
  const id = taskId(r.stderr);
  const left = JSON.parse(cli('task', 'show', id, '--json').stdout) as TaskRecord;
  t.equal(left.status, 'running', 'still waiting for the node');
  const waiter = spawn(process.execPath, [join(ROOT, 'bin/provisiond.js'), '-c', cfgFile, 'task', 'wait', id, '--timeout', '30'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  waiter.stdout.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((res) => waiter.on('exit', (c) => res(c)));
  await new Promise((res) => setTimeout(res, 1000));
  const r2 = await openRegistry(config, silentLogger());
  await r2.addEvent({ time: Date.now(), nodeid: mac(2), source: 'dhcp', stage: 'ack', msg: 'bound 10.0.0.2', ok: true });
  // What the HTTP service records of a boot: the init script asked for, then the ready check-in.
  await r2.recordContact(mac(2), 'init', '10.0.0.2');
  await r2.addEvent({ time: Date.now(), nodeid: mac(2), source: 'http', stage: 'nodescript init', msg: 'requested from 10.0.0.2', ok: true });
  await r2.recordContact(mac(2), 'ready', '10.0.0.2');
  await r2.addEvent({ time: Date.now() + 1, nodeid: mac(2), source: 'http', stage: 'nodescript ready', msg: 'requested from 10.0.0.2', ok: true });
  await r2.flush();
  await r2.close();
  t.equal(await exited, 0, 'the task completed with success');
  t.equal(out, `task ${id}: complete, result success\n`);
  const rec = JSON.parse(cli('task', 'show', id, '--json').stdout) as TaskRecord;
  t.match(rec.messages.map((m) => m.message), [/^started by /, /^taken over by /]);
});
