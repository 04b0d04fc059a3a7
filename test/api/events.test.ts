/**
 * GET /events through real clients (node's fetch reading the stream, and curl -N) while nodes
 * fetch their init script from the node-facing port: node and timeline events in order, the
 * `node` and `kind` filters, a resume with Last-Event-ID that gets exactly what was missed, and a
 * `gap` for an id from before a daemon restart.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon/run.js';
import { memoryLogger } from '../../src/log/logger.js';
import { text } from '../lib/daemon.js';
import type { Teardown } from '../lib/statedir.js';
import { startApiDaemon, type ApiHarness } from './lib/harness.js';
import { SseClient } from './lib/sse.js';

const NODES = [
  { name: 'n0001', nodeid: '52:54:00:ee:00:01' },
  { name: 'n0002', nodeid: '52:54:00:ee:00:02' },
  { name: 'x0099', nodeid: '52:54:00:ee:00:99' },
];

interface EventData {
  kind: string;
  node: string;
  nodeid: string;
  stage?: string;
  state?: string;
  source?: string;
}

async function cluster(t: Teardown): Promise<ApiHarness> {
  // The stream, not node identity, is under test: without credentials one init makes four events
  // (test/daemon/identity.test.ts covers the credential step).
  const h = await startApiDaemon(t, 'security:\n  nodeCredentials: false\n');
  h.write('nodescripts/init/all/10-hello', '#!/bin/sh\necho "echo hello from $NODENAME"\n', 0o755);
  for (const n of NODES) await h.daemon.registry.addNode(n);
  return h;
}

/** What a node does first: GET its init script from the node-facing HTTP port. */
async function fetchInit(h: ApiHarness, nodeid: string): Promise<void> {
  const r = await text(`${h.base}/nodescripts/init?nodeid=${nodeid}`);
  if (r.status !== 200) throw new Error(`init for ${nodeid}: ${r.status} ${r.body}`);
}

/** The four events one init fetch makes, as `kind node stage-or-state`. */
const steps = (name: string) => [`node ${name} init`, `timeline ${name} nodescript init`, `timeline ${name} init 10-hello`, `timeline ${name} nodescript init sent`];
const summary = (d: EventData) => `${d.kind} ${d.node} ${d.kind === 'node' ? d.state : d.stage}`;

t.test('node and timeline events arrive as nodes fetch their init script; node and kind filters', async (t) => {
  const h = await cluster(t);
  const url = `${h.apiBase}/api/v1/events`;
  const all = await SseClient.open(url, { token: h.viewer.token });
  const twoNodes = await SseClient.open(`${url}?node=n00[01-02]&kind=node`, { token: h.viewer.token });
  const byMac = await SseClient.open(`${url}?node=52-54-00-EE-00-99&kind=timeline`, { token: h.viewer.token });
  const globbed = await SseClient.open(`${url}?node=x*`, { token: h.viewer.token });
  t.teardown(() => [all, twoNodes, byMac, globbed].forEach((c) => c.close()));
  t.match(all.res.headers.get('content-type'), /^text\/event-stream/);
  t.match(all.comments.join('\n') || (await all.until(() => all.comments.length > 0).then(() => all.comments.join('\n'))), /provisiond events, run [0-9a-f]{8}/);

  for (const n of NODES) await fetchInit(h, n.nodeid);
  await all.count(12);
  t.same(all.data<EventData>().map(summary), NODES.flatMap((n) => steps(n.name)), 'every step of each node, in order');
  t.same(all.events.map((e) => e.event), all.data<EventData>().map((d) => d.kind), 'the SSE event type is the kind');
  t.match(all.data<EventData>()[0], { kind: 'node', node: 'n0001', nodeid: '52:54:00:EE:00:01', state: 'init', addr: '127.0.0.1', time: Number });
  const seqs = all.events.map((e) => Number(e.id!.split('-')[1]));
  t.same(seqs, seqs.map((_, i) => seqs[0]! + i), 'ids number the events without holes');

  await twoNodes.count(2);
  await byMac.count(3);
  await globbed.count(4);
  t.same(twoNodes.data<EventData>().map(summary), ['node n0001 init', 'node n0002 init'], '?node=n00[01-02]&kind=node');
  t.same(byMac.data<EventData>().map(summary), steps('x0099').slice(1), '?node=MAC (any spelling)&kind=timeline');
  t.same(globbed.data<EventData>().map(summary), steps('x0099'), '?node=x*');

  const bad = await fetch(`${url}?kind=weather`, { headers: { authorization: `Bearer ${h.viewer.token}` } });
  t.equal(bad.status, 400);
  t.match(await bad.json(), { error: { field: 'query.kind' } });
  t.equal((await fetch(url)).status, 401, 'no token: 401, not a stream');
});

t.test('curl -N reads the stream as events happen', async (t) => {
  const h = await cluster(t);
  const curl = spawn('curl', ['-N', '-sS', '-H', `Authorization: Bearer ${h.viewer.token}`, `${h.apiBase}/api/v1/events?kind=node`]);
  t.teardown(() => curl.kill('SIGKILL'));
  let out = '';
  curl.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const seen = (re: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const end = Date.now() + 10_000;
      const tick = () => (re.test(out) ? resolve() : Date.now() > end ? reject(new Error(`curl got: ${out}`)) : setTimeout(tick, 20));
      tick();
    });
  await seen(/provisiond events, run/);
  await fetchInit(h, NODES[1]!.nodeid);
  await seen(/event: node\ndata: \{"kind":"node","node":"n0002"/);
  t.match(out, /^retry: 2000$/m);
  t.match(out, /^id: [0-9a-f]{8}-\d+\nevent: node\ndata: .*"state":"init"/m);
});

t.test('Last-Event-ID resumes with exactly the missed events; an id from before a restart gets a gap', async (t) => {
  const h = await cluster(t);
  const url = `${h.apiBase}/api/v1/events`;
  const steady = await SseClient.open(url, { token: h.viewer.token });
  t.teardown(() => steady.close());
  const away = await SseClient.open(url, { token: h.viewer.token });
  await fetchInit(h, NODES[0]!.nodeid);
  await away.count(4);
  const lastSeen = away.events.at(-1)!.id!;
  away.close();
  await away.done;

  // Missed while disconnected: two nodes' fetches.
  await fetchInit(h, NODES[1]!.nodeid);
  await fetchInit(h, NODES[2]!.nodeid);
  await steady.count(12);
  const back = await SseClient.open(url, { token: h.viewer.token, lastEventId: lastSeen });
  t.teardown(() => back.close());
  await back.count(8);
  t.same(back.events.map((e) => e.id), steady.events.slice(4).map((e) => e.id), 'exactly the 8 missed, in order');
  t.notOk(back.events.some((e) => e.event === 'gap'), 'no gap: they were all in the buffer');
  // Live events follow the replay, none twice.
  await fetchInit(h, NODES[0]!.nodeid);
  await back.count(12);
  await steady.count(16);
  t.same(back.events.map((e) => e.id), steady.events.slice(4).map((e) => e.id), 'then live ones, none twice');
  const viaQuery = await SseClient.open(`${url}?lastEventId=${steady.events[13]!.id}`, { token: h.viewer.token });
  await viaQuery.count(2);
  t.same(viaQuery.events.map((e) => e.id), steady.events.slice(14).map((e) => e.id), '?lastEventId= as the header');
  viaQuery.close();

  // The daemon restarts: ids of the old run mean nothing to the new one.
  await h.daemon.close();
  await steady.done;
  t.ok(steady.ended, 'the stream ends when the daemon stops');
  const daemon = await Daemon.start({ config: loadConfig(h.configPath), log: memoryLogger(), watch: false });
  t.teardown(() => daemon.close());
  const url2 = `${(daemon.services.get('api') as unknown as { url: string }).url}/api/v1/events`;
  const after = await SseClient.open(url2, { token: h.viewer.token, lastEventId: lastSeen });
  t.teardown(() => after.close());
  await after.count(1);
  t.equal(after.events[0]!.event, 'gap', 'a gap event first');
  t.match(JSON.parse(after.events[0]!.data), { message: /events were lost since your Last-Event-ID/ });
  t.match(after.events[0]!.id, null, 'a gap has no id');
  await text(`http://127.0.0.1:${daemon.http!.server.port}/nodescripts/init?nodeid=${NODES[2]!.nodeid}`);
  await after.count(5);
  t.same(after.data<EventData>().slice(1).map(summary), steps('x0099'), 'then the new run\'s events');
  t.not(after.events[1]!.id!.split('-')[0], lastSeen.split('-')[0], 'under a new run id');
});
