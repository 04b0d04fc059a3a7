/**
 * The VCL provisioning module (adapters/vcl) under real `perl` against a real provisiond (in this
 * process, API on loopback), without VMs: the nodes are driven by the exec power driver's fixture (a
 * state file per node). Missing settings, a bad token and an unknown node give false with the API's
 * message logged; does_image_exist and get_image_size for existing, unbuilt and missing VNFS; the
 * power methods; a refused capture; a load whose node never comes up fails after VCL's no-progress limit (on a fake
 * clock: minutes in seconds), cancelling its task; unload cancels the node's deploy still running
 * (not one of several nodes) and releases an allocation.
 * VCL is not installable here: fixtures/lib holds stand-ins for the classes the module inherits.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gate } from '../../lib/gate.js';
import { apiUrl, startApiDaemon } from '../../api/lib/harness.js';
import { startDaemon } from '../../lib/daemon.js';
import { waitFor } from '../../lib/sleep.js';
import { createToken } from '../../../src/registry/tokens.js';
import { perlWhyNot } from './lib/prereqs.js';
import { messages, resultOf, runVcl, type VclInput } from './lib/vcl.js';

const EXEC_FIXTURES = resolve(import.meta.dirname, '../../power/fixtures/exec');

if (gate(t, perlWhyNot())) {
  const h = await startApiDaemon(t, '', {
    setup: (dir) => {
      mkdirSync(join(dir, 'vnfs/rocky9/rootfs'), { recursive: true });
      mkdirSync(join(dir, 'vnfs/built/rootfs'), { recursive: true });
      // A built image of 3 MiB and one byte: 4 MB, rounded up.
      writeFileSync(join(dir, 'vnfs/built/image.cpio.gz'), Buffer.alloc(3 * 1024 * 1024 + 1));
    },
  });
  const reg = h.daemon.registry;
  await reg.importNodes([
    { name: 'vcl01', nodeid: '52:54:00:c1:00:01', group: 'vcl', vnfs: 'rocky9' },
    { name: 'vcl02', nodeid: '52:54:00:c1:00:02', group: 'vcl', vnfs: 'rocky9' },
    { name: 'vcl03', nodeid: '52:54:00:c1:00:03', group: 'vcl', vnfs: 'rocky9' },
  ]);
  await reg.updateGroup('vcl', { attrs: { 'power.driver': 'exec', 'power.dir': EXEC_FIXTURES } });
  for (const n of ['vcl01', 'vcl02', 'vcl03']) await reg.updateNode(n, { attrs: { 'power.statefile': join(h.statedir, `power-${n}`) } });
  const operator = await h.token('vcl', 'operator');
  const settings = (token = operator) => ({ 'provisiond|api_url': h.apiBase, 'provisiond|token': token, 'provisiond|poll_interval': '1' });
  const input = (calls: VclInput['calls'], data: VclInput['data'] = {}, token = operator): VclInput => ({
    variables: settings(token),
    data: { computer_node_name: 'vcl01.cluster.example.org', image_name: 'rocky9', reservation_id: 42, computer_id: 7, ...data },
    calls,
  });

  t.test('without api_url and token the module does not initialize, and says which settings', async (t) => {
    const out = await runVcl({ variables: {}, data: {}, calls: [{ method: 'node_status' }] });
    t.equal(out.initialized, false, 'new() gives no object');
    t.match(messages(out, 'CRITICAL'), /provisiond\|api_url and provisiond\|token/);
  });

  t.test('a bad token: false, with the API\'s message logged', async (t) => {
    const out = await runVcl(input([{ method: 'node_status' }, { method: 'load' }, { method: 'power_status' }, { method: 'does_image_exist' }], {}, 'pvd_not-a-token'));
    t.equal(out.initialized, true);
    t.equal(resultOf(out, 'node_status'), null, 'node_status: undef (new.pm then reloads)');
    t.equal(resultOf(out, 'load'), 0, 'load: 0');
    t.equal(resultOf(out, 'power_status'), null, 'power_status: undef');
    t.equal(resultOf(out, 'does_image_exist'), 0);
    t.match(messages(out, 'WARNING'), /GET \/nodes\/vcl01\/verdict: 401 unauthorized: unknown token/, 'the API\'s status and message');
    t.match(messages(out, 'WARNING'), /POST \/nodes\/vcl01\/deploy: 401 unauthorized/);
    t.match(out.loadlog.map((l) => l.state), ['info', 'loadimagefailed'], 'the load log says it failed');
  });

  t.test('an unknown node: false, with the API\'s message', async (t) => {
    const out = await runVcl(input([{ method: 'node_status' }, { method: 'power_on' }, { method: 'get_current_image_name' }, { method: 'load' }], { computer_node_name: 'nosuch' }));
    t.equal(resultOf(out, 'node_status'), null);
    t.equal(resultOf(out, 'power_on'), 0);
    t.equal(resultOf(out, 'get_current_image_name'), null);
    t.equal(resultOf(out, 'load'), 0);
    t.match(messages(out, 'WARNING'), /GET \/nodes\/nosuch\/verdict: 404 not_found: .*nosuch/);
    t.match(messages(out, 'WARNING'), /POST \/nodes\/nosuch\/deploy: 404/);
  });

  t.test('does_image_exist and get_image_size: built, not built, missing', async (t) => {
    const out = await runVcl(
      input([
        { method: 'does_image_exist' },
        { method: 'does_image_exist', args: ['built'] },
        { method: 'does_image_exist', args: ['nosuch'] },
        { method: 'get_image_size' },
        { method: 'get_image_size', args: ['built'] },
        { method: 'get_image_size', args: ['nosuch'] },
      ]),
    );
    t.same(out.results.map((r) => r.result), [1, 1, 0, 0, 4, null], 'exists: 1 1 0; MB: 0 (not built), 4 (3 MiB + 1 byte, rounded up), undef (missing)');
    t.match(messages(out, 'WARNING'), /GET \/vnfs\/nosuch: 404/, 'the size of a missing image is a warning');
  });

  t.test('power: status, on, off, reset through the node\'s power driver', async (t) => {
    const out = await runVcl(
      input([
        { method: 'power_status' },
        { method: 'power_on' },
        { method: 'power_status' },
        { method: 'power_off' },
        { method: 'power_status' },
        { method: 'power_reset' },
        { method: 'power_status' },
        { method: 'node_status' },
      ]),
    );
    t.same(out.results.map((r) => r.result), ['off', 1, 'on', 1, 'off', 1, 'on', 'RELOAD']);
    t.match(messages(out, 'OK'), /vcl01: RELOAD: /, 'node_status says why it is RELOAD');
  });

  t.test('a load whose node never comes up fails after max(10, reload time) minutes without progress', async (t) => {
    const started = Date.now();
    const out = await runVcl(input([{ method: 'load' }], { computer_node_name: 'vcl02', image_reload_time: 15 }), { fakeClock: true, timeoutMs: 300_000 });
    t.comment(`15 fake minutes in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    t.equal(resultOf(out, 'load'), 0, 'load: 0');
    const warning = messages(out, 'WARNING');
    t.match(warning, /deploy of rocky9 on vcl02: no progress for 15 minutes \(task [\w-]+\): cancelling it/);
    const id = /task ([\w-]+)\)/.exec(warning)![1]!;
    let task: { status: string; nodes: Array<{ messages: Array<{ message: string }> }> } | null = null;
    for (let i = 0; i < 100; i++) {
      task = (await h.viewer.get(`/tasks/${id}`)).body as typeof task;
      if (task!.status === 'terminated') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.equal(task!.status, 'terminated', 'the deploy task was cancelled');
    t.match(task!.nodes[0]!.messages.map((m) => m.message).join('\n'), /cancelled by vcl/);
    t.ok(out.lastcheck.length >= 14 && out.lastcheck.length <= 16, `update_reservation_lastcheck every minute (${out.lastcheck.length} times)`);
    t.same(out.lastcheck[0]!.reservations, [42]);
    const states = out.loadlog.map((l) => l.state);
    t.same([states[0], states.at(-1)], ['info', 'loadimagefailed'], `load log: ${states.join(', ')}`);
    t.ok(states.includes('provisiond_power'), 'the power phase is in the load log');
  });

  t.test('a capture provisiond refuses: 0, after the OS module\'s pre_capture, with the API\'s answer', async (t) => {
    // An operator token may not capture (admin only); before the capture operation exists the path
    // is unknown: either way the module says what the API answered.
    const out = await runVcl({ ...input([{ method: 'capture', set: { image_name: 'vclnew' } }]), os: true });
    t.equal(resultOf(out, 'capture'), 0);
    t.same(out.os, ['pre_capture end_state=on'], 'pre_capture first, the node left on');
    t.match(messages(out, 'WARNING'), /POST \/nodes\/vcl01\/capture: 40[345] /);
  });

  t.test('unload powers the node off and releases its allocation, cancelling its deploy still running first', async (t) => {
    const alloc = await h.operator.post('/allocations', { pattern: 'vcl03', vnfs: 'rocky9', owner: 'vcl-reservation-42', timeout: 600 });
    t.equal(alloc.status, 201);
    // VCL may unload while provisiond still deploys (a load it gave up on, an allocation's deploy):
    // that deploy must not power the node on again after the power off.
    const deploy = (alloc.body as { task: string }).task;
    const task = async () => (await h.viewer.get(`/tasks/${deploy}`)).body as { status: string; result: string; cancelRequested: { by: string } | null };
    t.ok(await waitFor(async () => (await task()).status === 'running', 10_000, 50), 'the deploy runs');
    const out = await runVcl(input([{ method: 'unload' }, { method: 'power_status' }], { computer_node_name: 'vcl03' }));
    t.same(out.results.map((r) => r.result), [1, 'off']);
    t.match(messages(out, 'OK'), new RegExp(`cancelling deploy task ${deploy} of vcl03`));
    t.match(await task(), { status: 'terminated', result: 'incomplete', cancelRequested: { by: 'vcl' } }, 'the deploy was cancelled by the module, and had ended before the power off');
    t.match(messages(out, 'OK'), /released vcl03 \(allocated to vcl-reservation-42\)/);
    t.equal((await h.viewer.get('/allocations/vcl03')).status, 404, 'no allocation left');
    const later = await runVcl(input([{ method: 'power_status' }], { computer_node_name: 'vcl03' }));
    t.same(later.results.map((r) => r.result), ['off'], 'and the node stays off');
  });

  t.test('unload leaves a deploy of several nodes alone, and says so', async (t) => {
    const many = await h.operator.post('/deploy', { nodes: ['vcl02', 'vcl03'], vnfs: 'rocky9', timeout: 600 });
    t.equal(many.status, 202);
    const id = (many.body as { id: string }).id;
    t.teardown(() => h.operator.post(`/tasks/${id}/cancel`, {}));
    const out = await runVcl(input([{ method: 'unload' }], { computer_node_name: 'vcl02' }));
    t.same(out.results.map((r) => r.result), [1], 'the node is powered off');
    t.match(messages(out, 'WARNING'), new RegExp(`vcl02 is in deploy task ${id} of 2 nodes: not cancelled`));
    t.notMatch(((await h.viewer.get(`/tasks/${id}`)).body as { status: string }).status, /terminat/, 'the task goes on for the other node');
  });

  t.test('an HTTPS API: trusted with provisiond|ca_file, refused without it, unless verify_tls is 0', async (t) => {
    let statedir = '';
    const tls = await startDaemon(t, 'api:\n  listen: 127.0.0.1\n  port: 0\n  tls:\n    cert: etc/api.crt\n    key: etc/api.key\n', {
      setup: (d) => {
        mkdirSync(join((statedir = d), 'etc'), { recursive: true });
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=provisiond test', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(d, 'etc/api.key'), '-out', join(d, 'etc/api.crt')], { stdio: 'ignore' });
      },
    });
    const base = apiUrl(tls);
    t.match(base, /^https:/);
    const { secret } = await createToken(tls.daemon.registry, { name: 'vcl-tls', role: 'operator' });
    const run = (extra: Record<string, string>) =>
      runVcl({ variables: { 'provisiond|api_url': base, 'provisiond|token': secret, ...extra }, data: { computer_node_name: 'nosuch', image_name: 'rocky9' }, calls: [{ method: 'node_status' }] });
    const trusted = await run({ 'provisiond|ca_file': join(statedir, 'etc/api.crt') });
    t.match(messages(trusted, 'WARNING'), /GET \/nodes\/nosuch\/verdict: 404 not_found/, 'with the CA file: the API answers (an unknown node)');
    const untrusted = await run({});
    t.match(messages(untrusted, 'WARNING'), /GET \/nodes\/nosuch\/verdict: 500 .*certificate verify failed/i, 'without it: the certificate is refused, and the log says so');
    const unverified = await run({ 'provisiond|verify_tls': '0' });
    t.match(messages(unverified, 'WARNING'), /404 not_found/, 'verify_tls 0: no check');
  });
}
