/**
 * Node identity as attacks (issue 23). The real node is 127.0.0.1 (its fixed address); the attacker
 * is 127.0.0.2, another source address on loopback that the test binds its requests to. Every
 * refused request must show in the victim's timeline, and the real node's own requests succeed
 * all along.
 */
import t from 'tap';
import { request } from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startDaemon, type Harness } from '../lib/daemon.js';
import type { Teardown } from '../lib/statedir.js';

const run = promisify(execFile);
const NODE = '52:54:00:aa:23:01';
const OTHER = '52:54:00:aa:23:02';
const ATTACKER = '127.0.0.2';

interface Answer {
  status: number;
  body: string;
}

/** A GET from `from` (a loopback source address), with the node credential `credential` if given. */
function get(h: Harness, path: string, opts: { from?: string; credential?: string; header?: 'bearer' | 'x' } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.credential !== undefined) {
    if (opts.header === 'x') headers['X-Provisiond-Credential'] = opts.credential;
    else headers.Authorization = `Bearer ${opts.credential}`;
  }
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: h.port, path, headers, localAddress: opts.from ?? '127.0.0.1', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The credential on line 2 of an init script. */
function credentialOf(script: string): string {
  const m = /^#!\/bin\/sh\nPROVISIOND_CREDENTIAL=([0-9a-f]{64}); export PROVISIOND_CREDENTIAL/.exec(script);
  if (!m) throw new Error(`no credential in the init script: ${script.slice(0, 200)}`);
  return m[1]!;
}

async function refusals(h: Harness, nodeid: string): Promise<string[]> {
  await h.daemon.registry.flush();
  return (await h.daemon.registry.listEvents(nodeid.toUpperCase())).filter((e) => e.stage === 'refused').map((e) => e.msg ?? '');
}

async function counters(h: Harness): Promise<Record<string, number>> {
  const health = (await fetch(`${h.base}/healthz`).then((r) => r.json())) as { nodeCredentials: Record<string, number> };
  return health.nodeCredentials;
}

async function boot(h: Harness, mac: string, from = '127.0.0.1'): Promise<string> {
  const init = await get(h, `/nodescripts/init?nodeid=${mac}`, { from });
  if (init.status !== 200) throw new Error(`init of ${mac}: ${init.status} ${init.body}`);
  return credentialOf(init.body);
}

async function setup(t: Teardown, extra = ''): Promise<Harness> {
  const h = await startDaemon(t, extra);
  h.write('nodescripts/init/all/10-hello', '#!/bin/sh\necho "echo hello"\n', 0o755);
  await h.daemon.registry.addNode({ name: 'n0001', nodeid: NODE, ipaddr: '127.0.0.1' });
  await h.daemon.registry.addNode({ name: 'n0002', nodeid: OTHER, ipaddr: ATTACKER });
  return h;
}

t.test('the real node: init hands it a credential it presents on check-ins, events and in the shipped scripts', async (t) => {
  const h = await setup(t);
  const cred = await boot(h, NODE);
  const ready = await get(h, `/nodescripts/ready?nodeid=${NODE}`, { credential: cred });
  t.equal(ready.status, 200, 'ready check-in with Authorization: Bearer');
  t.equal((await get(h, `/nodes/${NODE}/events?stage=kernel&msg=up`, { credential: cred, header: 'x' })).status, 200, 'event with X-Provisiond-Credential');
  // busybox wget, as the stage-1 client and the ready agent send it.
  const { stdout } = await run('busybox', ['wget', '-q', '-O', '-', '--header', `Authorization: Bearer ${cred}`, `${h.base}/nodes/${NODE}/events?stage=switch-root`]);
  t.equal(stdout, 'ok\n', 'busybox wget --header is accepted');
  t.same(await refusals(h, NODE), [], 'nothing refused');
  const stored = await h.daemon.registry.getNodeCredential(NODE.toUpperCase());
  t.not(stored?.hash, cred, 'only a hash is stored');
  t.equal(stored?.address, '127.0.0.1', 'bound to the address it was issued to');
  t.equal((await counters(h)).accepted, 3);
});

t.test('with the defaults (source binding on: fixed addresses), a node\'s scripts and its own credential are useless elsewhere', async (t) => {
  const h = await setup(t);
  const cred = await boot(h, NODE);
  const init = await get(h, `/nodescripts/init?nodeid=${NODE}`, { from: ATTACKER });
  t.equal(init.status, 403, 'init script from another address: refused (verifySource auto, fixed address)');
  t.notMatch(init.body, /PROVISIOND_CREDENTIAL/);
  t.match(init.body, /n0001 holds 127\.0\.0\.1, the request came from 127\.0\.0\.2/);
  const ready = await get(h, `/nodescripts/ready?nodeid=${NODE}`, { from: ATTACKER, credential: cred });
  t.equal(ready.status, 403, 'ready check-in from another address, even with the stolen credential');
  const ev = await get(h, `/nodes/${NODE}/events?stage=ready`, { from: ATTACKER, credential: cred });
  t.equal(ev.status, 403, 'event from another address with the stolen credential');
  t.match(ev.body, /the credential was issued to 127\.0\.0\.1/);
  const ipxe = await get(h, `/boot/${NODE}.ipxe`, { from: ATTACKER });
  t.equal(ipxe.status, 403, 'the iPXE script of the node from another address');
  t.equal((await get(h, `/boot/${NODE}.ipxe`)).status, 200, 'the node gets its iPXE script');
  t.equal((await get(h, `/nodescripts/ready?nodeid=${NODE}`, { credential: cred })).status, 200, 'the node checks in');
  const seen = await refusals(h, NODE);
  t.ok(seen.some((m) => m.startsWith('nodescript init from 127.0.0.2, node holds 127.0.0.1')), 'init attempt in the timeline');
  t.ok(seen.some((m) => m.startsWith('nodescript ready from 127.0.0.2, node holds 127.0.0.1')), 'check-in attempt in the timeline');
  t.ok(seen.some((m) => m.startsWith('ipxe script from 127.0.0.2')), 'iPXE attempt in the timeline');
  t.ok(seen.some((m) => /^event "ready" from 127\.0\.0\.2: the credential was issued to 127\.0\.0\.1/.test(m)), 'event attempt in the timeline');
  const c = await counters(h);
  t.equal(c.sourceRefused, 3, 'source refusals counted');
  t.equal(c.refused, 1, 'credential refusals counted');
});

t.test('attacks on the credential (source binding off): each refused, each in the victim timeline, the real node unaffected', async (t) => {
  const h = await setup(t, 'security:\n  verifySource: off\n');
  const first = await boot(h, NODE);
  const second = await boot(h, NODE); // a reboot: the first is now an earlier boot's
  const others = await boot(h, OTHER, ATTACKER);

  const cases: [string, string | undefined, number, RegExp][] = [
    ['without a credential', undefined, 401, /no node credential presented/],
    ['with a wrong one', 'f'.repeat(64), 403, /wrong node credential/],
    ["with another node's", others, 403, /the credential of another node \(n0002\)/],
    ["with a previous boot's", first, 403, /the credential of an earlier boot/],
  ];
  for (const [what, credential, status, reason] of cases) {
    const ready = await get(h, `/nodescripts/ready?nodeid=${NODE}`, { from: ATTACKER, credential });
    t.equal(ready.status, status, `ready check-in ${what}: ${status}`);
    t.match(ready.body, reason);
    const ev = await get(h, `/nodes/${NODE}/events?stage=ready&msg=fake`, { from: ATTACKER, credential });
    t.equal(ev.status, status, `event ${what}: ${status}`);
    t.match(ev.body, reason);
    const own = await get(h, `/nodescripts/ready?nodeid=${NODE}`, { credential: second });
    t.equal(own.status, 200, `the real node still checks in (after the attack ${what})`);
  }
  const seen = await refusals(h, NODE);
  for (const [what, , , reason] of cases) {
    t.ok(seen.some((m) => /^nodescript ready from 127\.0\.0\.2: /.test(m) && reason.test(m)), `the check-in ${what} is in the victim's timeline`);
    t.ok(seen.some((m) => /^event "ready" from 127\.0\.0\.2: /.test(m) && reason.test(m)), `the event ${what} is in the victim's timeline`);
  }
  t.ok((await refusals(h, OTHER)).some((m) => /presented as the credential of 52:54:00:AA:23:01/.test(m)), "the node whose credential was used is told it is out");
  const events = await h.daemon.registry.listEvents(NODE.toUpperCase());
  t.ok(events.some((e) => e.stage === 'ready' && e.source === 'node') === false, 'no fake ready event recorded');
  t.equal((await counters(h)).refused, cases.length * 2, 'every refusal counted');
});

t.test('a new init revokes the previous credential and says so in the timeline', async (t) => {
  const h = await setup(t);
  const first = await boot(h, NODE);
  t.equal((await get(h, `/nodescripts/ready?nodeid=${NODE}`, { credential: first })).status, 200);
  const second = await boot(h, NODE);
  t.not(first, second, 'a fresh credential for each boot');
  t.equal((await get(h, `/nodescripts/ready?nodeid=${NODE}`, { credential: first })).status, 403, 'the first is dead');
  t.equal((await get(h, `/nodescripts/ready?nodeid=${NODE}`, { credential: second })).status, 200, 'the second works');
  await h.daemon.registry.flush();
  const steps = (await h.daemon.registry.listEvents(NODE.toUpperCase())).filter((e) => e.stage === 'credential').map((e) => e.msg);
  t.same(steps, ['issued to 127.0.0.1 for this boot', "issued to 127.0.0.1 for this boot; the previous boot's credential is revoked"]);
});

t.test('bad credentials are rate limited per address; the real node is not', async (t) => {
  const h = await setup(t, 'security:\n  verifySource: off\n  maxBadCredentialsPerMinute: 5\n');
  const cred = await boot(h, NODE);
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) statuses.push((await get(h, `/nodescripts/ready?nodeid=${NODE}`, { from: ATTACKER, credential: 'x' })).status);
  t.same(statuses, [403, 403, 403, 403, 403, 429, 429, 429], 'refused five times, then 429 at once');
  t.equal((await refusals(h, NODE)).length, 5, 'the limited ones do not fill the timeline');
  t.equal((await counters(h)).limited, 3, 'but they are counted');
  t.equal((await get(h, `/nodescripts/ready?nodeid=${NODE}`, { credential: cred })).status, 200, 'the real node, another address, is served');
});

t.test('requests for a node from an address it does not hold are rate limited the same way', async (t) => {
  const h = await setup(t, 'security:\n  maxBadCredentialsPerMinute: 5\n');
  const cred = await boot(h, NODE);
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) statuses.push((await get(h, `/nodescripts/init?nodeid=${NODE}`, { from: ATTACKER })).status);
  t.same(statuses, [403, 403, 403, 403, 403, 429, 429, 429], 'refused five times (source binding), then 429 at once');
  t.equal((await refusals(h, NODE)).length, 5, 'only the first five fill the timeline');
  t.equal((await get(h, `/nodescripts/ready?nodeid=${NODE}`, { credential: cred })).status, 200, 'the real node, from its own address, is served');
});

t.test('security.nodeCredentials: false gives the old behaviour', async (t) => {
  const h = await setup(t, 'security:\n  nodeCredentials: false\n');
  const init = await get(h, `/nodescripts/init?nodeid=${NODE}`);
  t.notMatch(init.body, /PROVISIOND_CREDENTIAL/, 'no credential in the script');
  t.equal((await get(h, `/nodescripts/ready?nodeid=${NODE}`)).status, 200);
  t.equal((await get(h, `/nodes/${NODE}/events?stage=x`)).status, 200);
});
