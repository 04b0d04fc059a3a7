/**
 * GET /metrics of a real `provisiond serve` in a network namespace, after a known sequence done by
 * real clients from another namespace: busybox udhcpc (a DORA), a datagram that is not DHCP,
 * tftp-hpa (one transfer), curl (the iPXE script, an init with a failing nodescript, the image,
 * a ready check-in). Every counter moved by exactly what that sequence implies; the text passes a
 * strict parser of the exposition format; the Grafana dashboard names only metrics of the scrape;
 * no token is 401, a viewer token is enough, on the API listener and on the metrics listener.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServeProcess } from '../lib/daemon.js';
import { gate, missingCommands, rootMissing } from '../lib/gate.js';
import { testLab } from '../lib/netns.js';
import { CLI } from '../lib/paths.js';
import { parsePromText, sumOf, valueOf, type Family } from '../lib/prom-text.js';
import { sleep } from '../lib/sleep.js';
import { makeStatedir, writeIn } from '../lib/statedir.js';
import { udhcpc } from '../dhcp/peers.js';
import { execFileSync } from 'node:child_process';

const why = rootMissing() ?? (missingCommands(['tftp', 'curl', 'busybox']).length ? 'needs tftp-hpa, curl and busybox' : null);
if (!gate(t, why)) process.exit(0);

const MAC = '52:54:00:77:22:01';
const TFTP_SIZE = 100_000;
const IMAGE_SIZE = 300_000;

const lab = testLab(t, 'pvd-metrics', { ipv6: false });
const [S, C] = lab.nss('s', 'c') as [string, string];
lab.link({ ns: S, dev: 'eth1', addr: '10.77.0.1/24' }, { ns: C, dev: 'eth0', mac: MAC });
const work = mkdtempSync(join(tmpdir(), 'pvd-metrics-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const statedir = makeStatedir(t, {}, { prefix: 'pvd-metrics-state-', layout: true });
writeIn(statedir, 'tftp/hello.bin', randomBytes(TFTP_SIZE));
writeIn(statedir, 'vnfs/demo/image.cpio.gz', randomBytes(IMAGE_SIZE));
writeIn(statedir, 'nodescripts/init/all/10-hello', '#!/bin/sh\necho "echo hello"\n', 0o755);
writeIn(statedir, 'nodescripts/init/all/20-broken', '#!/bin/sh\nexit 3\n', 0o755);
const configPath = join(statedir, 'provisiond.yaml');
writeFileSync(
  configPath,
  `statedir: ${statedir}
master: 10.77.0.1
log: { level: info }
http: { listen: 0.0.0.0, port: 8080 }
tftp: { listen: 0.0.0.0, port: 69 }
dhcp: { enabled: true, interface: eth1, range: [10.77.0.100, 10.77.0.199], netmask: 255.255.255.0, leaseTime: 600 }
defaults: { vnfs: demo }
api: { port: 9870 }
metrics: { enabled: true, port: 9871 }
`,
);
const token = execFileSync(process.execPath, [CLI, '--config', configPath, 'token', 'create', 'scraper', '--role', 'viewer'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
const daemon = await ServeProcess.start({ configPath, netns: { lab, ns: S } });
t.teardown(() => daemon.stop());

/** curl inside `ns`: the status and the body. */
async function curl(ns: string, url: string, headers: string[] = []): Promise<{ status: number; body: string }> {
  const out = await lab.run(ns, 'curl', ['-sS', ...headers.flatMap((h) => ['-H', h]), '-w', '\n%{http_code}', url]);
  const nl = out.lastIndexOf('\n');
  return { status: Number(out.slice(nl + 1)), body: out.slice(0, nl) };
}

async function scrape(url = 'http://127.0.0.1:9870/metrics'): Promise<Map<string, Family>> {
  const r = await curl(S, url, [`Authorization: Bearer ${token}`]);
  if (r.status !== 200) throw new Error(`scrape ${url}: ${r.status} ${r.body}`);
  return parsePromText(`${r.body}\n`);
}

// The API listener starts after the node-facing servers: wait (bounded) until it answers.
for (let i = 0; i < 100; i++) {
  if ((await curl(S, 'http://127.0.0.1:9870/api/v1/healthz').catch(() => null))?.status === 200) break;
  await sleep(100);
}

t.test('each counter moves by exactly what a known sequence implies', async (t) => {
  const before = await scrape();
  const delta = (after: Map<string, Family>, sample: string, labels: Record<string, string> = {}) => sumOf(after, sample, labels) - sumOf(before, sample, labels);

  // A DORA by busybox udhcpc (5 s between its packets: a slow answer is not asked for twice).
  const lease = udhcpc(C, 'eth0', work, ['-T', '5']);
  t.ok(lease, 'udhcpc got a lease');
  const ip = lease!.ip!;
  lab.exec(C, 'ip', ['addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  // A datagram to the DHCP port that is no DHCP packet: a parse failure, nothing else.
  lab.exec(C, process.execPath, ['-e', "const s=require('dgram').createSocket('udp4');s.send(Buffer.from('not dhcp'),67,'10.77.0.1',()=>s.close())"]);
  // One TFTP transfer by tftp-hpa.
  const got = join(work, 'hello.bin');
  await lab.run(C, 'tftp', ['10.77.0.1', '-m', 'binary', '-c', 'get', 'hello.bin', got]);
  t.equal(readFileSync(got).length, TFTP_SIZE, 'the tftp transfer is whole');
  // The boot's HTTP steps, by curl: iPXE script, init (one of two nodescripts fails), image, ready.
  const base = 'http://10.77.0.1:8080';
  t.equal((await curl(C, `${base}/boot/${MAC}.ipxe`)).status, 200);
  const init = await curl(C, `${base}/nodescripts/init?nodeid=${MAC}`);
  t.match(init.body, /20-broken failed on the master \(exit 3\)/);
  const image = await lab.run(C, 'curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download}', `${base}/files/vnfs/demo/image.cpio.gz`]);
  t.equal(Number(image), IMAGE_SIZE);
  // The ready check-in presents the credential its init script handed over (node identity).
  const credential = /^PROVISIOND_CREDENTIAL=([0-9a-f]{64})/m.exec(init.body)?.[1];
  t.ok(credential, 'the init script hands the node its credential');
  t.equal((await curl(C, `${base}/nodescripts/ready?nodeid=${MAC}`)).status, 401, 'a check-in without it is refused');
  t.equal((await curl(C, `${base}/nodescripts/ready?nodeid=${MAC}`, [`Authorization: Bearer ${credential}`])).status, 200);

  // Counters move as responses close and batches commit: wait (bounded) for the last of them.
  let after = await scrape();
  for (let i = 0; i < 50 && (delta(after, 'provisiond_http_requests_total') < 4 || delta(after, 'provisiond_registry_write_batches_total', { result: 'ok' }) < 1); i++) {
    await sleep(100);
    after = await scrape();
  }

  t.equal(delta(after, 'provisiond_dhcp_packets_received_total', { type: 'discover' }), 1, 'one DISCOVER received');
  t.equal(delta(after, 'provisiond_dhcp_packets_received_total', { type: 'request' }), 1, 'one REQUEST received');
  t.equal(delta(after, 'provisiond_dhcp_packets_received_total'), 2, 'and nothing else');
  t.equal(delta(after, 'provisiond_dhcp_replies_sent_total', { type: 'offer' }), 1, 'one OFFER sent');
  t.equal(delta(after, 'provisiond_dhcp_replies_sent_total', { type: 'ack' }), 1, 'one ACK sent');
  t.equal(delta(after, 'provisiond_dhcp_replies_sent_total'), 2, 'and no other reply');
  t.equal(delta(after, 'provisiond_dhcp_reply_latency_seconds_count'), 2, 'both replies timed');
  t.equal(delta(after, 'provisiond_dhcp_parse_failures_total', { reason: 'truncated' }), 1, 'the junk datagram: one parse failure');
  t.equal(delta(after, 'provisiond_dhcp_packets_dropped_total'), 0, 'no request dropped');
  t.equal(delta(after, 'provisiond_dhcp_allocation_failures_total'), 0, 'no allocation failure');
  t.equal(valueOf(after, 'provisiond_dhcp_pool_addresses_in_use', { pool: '10.77.0.0/24' }), 1, 'one address of the pool in use');
  t.equal(valueOf(after, 'provisiond_dhcp_pool_addresses_free', { pool: '10.77.0.0/24' }), 99, 'the other 99 free');

  t.equal(delta(after, 'provisiond_tftp_transfers_started_total'), 1, 'one TFTP transfer started');
  t.equal(delta(after, 'provisiond_tftp_transfers_completed_total'), 1, 'and completed');
  t.equal(delta(after, 'provisiond_tftp_transfers_failed_total'), 0, 'none failed');
  t.equal(delta(after, 'provisiond_tftp_sent_bytes_total'), TFTP_SIZE, 'its bytes');
  t.equal(delta(after, 'provisiond_tftp_transfer_duration_seconds_count'), 1, 'its duration');
  t.ok(after.has('provisiond_tftp_retransmitted_blocks_total'), 'retransmitted blocks are counted (how many depends on the load)');

  t.equal(delta(after, 'provisiond_http_requests_total', { route: 'ipxe-script', status: '200' }), 1, 'one iPXE script');
  t.equal(delta(after, 'provisiond_http_requests_total', { route: 'nodescripts', status: '200' }), 2, 'two nodescript requests (init, ready)');
  t.equal(delta(after, 'provisiond_http_requests_total', { route: 'files', status: '200' }), 1, 'one getfile');
  t.equal(delta(after, 'provisiond_http_requests_total', { route: 'nodescripts', status: '401' }), 1, 'one refused (no credential)');
  t.equal(delta(after, 'provisiond_http_requests_total'), 5, 'and no other request');
  t.equal(delta(after, 'provisiond_node_credential_checks_total', { result: 'issued' }), 1, 'one node credential issued (init)');
  t.equal(delta(after, 'provisiond_node_credential_checks_total', { result: 'accepted' }), 1, 'one request accepted with it (ready)');
  t.equal(delta(after, 'provisiond_node_credential_checks_total', { result: 'refused' }), 1, 'one refused without it');
  t.equal(delta(after, 'provisiond_node_credential_checks_total', { result: 'wrong-source' }), 0, 'none from another address');
  t.equal(delta(after, 'provisiond_http_response_bytes_total', { route: 'files' }), IMAGE_SIZE, 'the image bytes');
  t.equal(delta(after, 'provisiond_http_getfile_duration_seconds_count'), 1, 'the getfile timed');

  t.equal(delta(after, 'provisiond_nodescript_runs_total'), 2, 'two nodescripts ran');
  t.equal(delta(after, 'provisiond_nodescript_failures_total', { reason: 'exit' }), 1, 'one failed by its exit status');
  t.equal(delta(after, 'provisiond_nodescript_failures_total'), 1, 'and only that one');
  t.equal(delta(after, 'provisiond_nodescript_run_duration_seconds_count'), 2, 'both timed');
  t.equal(valueOf(after, 'provisiond_nodescript_processes_running'), 0, 'none running now');
  t.equal(valueOf(after, 'provisiond_nodescript_processes_waiting'), 0, 'none waiting');

  t.equal(delta(after, 'provisiond_boot_duration_seconds_count'), 1, 'one boot, first DHCP to ready');
  for (const phase of ['dhcp', 'loader', 'stage1', 'nodescripts', 'image']) {
    t.equal(delta(after, 'provisiond_boot_phase_duration_seconds_count', { phase }), 1, `its ${phase} phase`);
  }
  // Nodes are counted by a registry scan that answers scrapes for 5 s: the next one sees the node.
  for (let i = 0; i < 40 && sumOf(after, 'provisiond_nodes') === 0; i++) {
    await sleep(250);
    after = await scrape();
  }
  t.equal(valueOf(after, 'provisiond_nodes', { state: 'ready' }), 1, 'the node is counted as ready');
  t.equal(sumOf(after, 'provisiond_nodes'), 1, 'one node in all');
  t.equal(valueOf(after, 'provisiond_nodes_by_verdict', { verdict: 'READY', reason: '' }), 1, 'its verdict: READY');

  const batches = delta(after, 'provisiond_registry_write_batches_total', { result: 'ok' });
  t.ok(batches >= 1, 'registry batches were committed');
  t.equal(delta(after, 'provisiond_registry_commit_duration_seconds_count'), batches, 'each commit timed');
  t.ok(after.has('provisiond_nodejs_eventloop_lag_seconds'), 'event-loop lag');
  t.ok(valueOf(after, 'provisiond_process_cpu_seconds_total') > 0, 'process metrics');

  for (const f of after.values()) {
    t.ok(f.name.startsWith('provisiond_'), `${f.name}: prefixed`);
    if (f.name.endsWith('_total')) t.equal(f.type, 'counter', `${f.name}: _total only on a counter`);
    for (const s of f.samples) {
      const text = Object.values(s.labels).join(' ');
      if (/[0-9a-f]{2}(:[0-9a-f]{2}){5}/i.test(text) || text.includes(ip)) t.fail(`${s.name}: a MAC or an address as a label value: ${text}`);
    }
  }
});

t.test('the Grafana dashboard names only metrics the daemon exports', async (t) => {
  const families = await scrape();
  const samples = new Set([...families.values()].flatMap((f) => f.samples.map((s) => s.name)));
  const dashboard = JSON.parse(readFileSync('etc/grafana/provisiond.json', 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }> };
  const used = new Set(dashboard.panels.flatMap((p) => (p.targets ?? []).flatMap((q) => q.expr.match(/provisiond_\w+/g) ?? [])));
  t.ok(used.size >= 30, 'the dashboard uses the metrics');
  for (const name of used) t.ok(samples.has(name), `${name} is in a scrape`);
});

t.test('docs/metrics.md explains every metric of a scrape, and no other', async (t) => {
  const families = await scrape();
  const doc = readFileSync('docs/metrics.md', 'utf8');
  const named = new Set(doc.match(/provisiond_\w+/g));
  for (const name of families.keys()) t.ok(named.has(name), `${name} is in docs/metrics.md`);
  const samples = new Set([...families.values()].flatMap((f) => f.samples.map((s) => s.name)));
  for (const name of named) t.ok(families.has(name) || samples.has(name), `${name} (docs/metrics.md) is in a scrape`);
});

t.test('a viewer token scrapes, no token is 401, on both listeners', async (t) => {
  for (const url of ['http://127.0.0.1:9870/metrics', 'http://127.0.0.1:9870/api/v1/metrics', 'http://127.0.0.1:9871/metrics']) {
    const anon = await curl(S, url);
    t.equal(anon.status, 401, `${url}: no token`);
    t.match(anon.body, /no token/);
    t.equal((await curl(S, url, ['Authorization: Bearer not-a-token'])).status, 401, `${url}: unknown token`);
    const ok = await curl(S, url, [`Authorization: Bearer ${token}`]);
    t.equal(ok.status, 200, `${url}: viewer`);
    t.match(ok.body, /^provisiond_dhcp_packets_received_total\{type="discover"\} \d+$/m);
  }
  t.equal((await curl(S, 'http://127.0.0.1:9871/api/v1/nodes', [`Authorization: Bearer ${token}`])).status, 404, 'the metrics listener serves nothing else');
});
