/**
 * Admission control (issue 22): with every transfer slot taken (`http.maxTransfers`), a node's next
 * large download is held, not refused, and served when a slot frees, in arrival order; the node's
 * timeline says how long it waited and the metrics count it. Small files never wait.
 */
import t from 'tap';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { startDaemon } from '../lib/daemon.js';
import { parsePromText, sumOf } from '../lib/prom-text.js';
import { sleep } from '../lib/sleep.js';
import { Slots } from '../../src/util/slots.js';

const MAC = '52:54:00:aa:22:01';

/** Starts a GET whose body is not read until `resume()`; resolves with the status once the head arrives. */
function held(url: string): { head: Promise<number>; done: Promise<number>; resume(): void } {
  let res: http.IncomingMessage | null = null;
  let bytes = 0;
  let resolveDone!: (n: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  const head = new Promise<number>((resolve, reject) => {
    http
      .get(url, { agent: false }, (r) => {
        res = r;
        r.pause();
        r.on('data', (c: Buffer) => (bytes += c.length));
        r.on('end', () => resolveDone(bytes));
        resolve(r.statusCode ?? 0);
      })
      .on('error', reject);
  });
  return { head, done, resume: () => res?.resume() };
}

t.test('a download beyond http.maxTransfers waits its turn, and the timeline and metrics say so', async (t) => {
  const h = await startDaemon(t, '', { http: '  maxTransfers: 1\n' });
  const big = 48 << 20; // more than the socket buffers hold: the first transfer keeps its slot while unread
  h.write('tftp/vmlinuz', randomBytes(big));
  h.write('tftp/initramfs.img', randomBytes(2 << 20));
  h.write('files/small.txt', 'tiny\n');
  await h.daemon.registry.addNode({ name: 'n2201', nodeid: MAC, ipaddr: '127.0.0.1' });

  const first = held(`${h.base}/boot/vmlinuz`);
  t.equal(await first.head, 200, 'the first transfer starts at once');
  const second = held(`${h.base}/boot/initramfs.img`);
  let secondStarted = false;
  void second.head.then(() => (secondStarted = true));
  const small = await fetch(`${h.base}/files/small.txt`);
  t.equal(await small.text(), 'tiny\n', 'a small file is served while the slot is taken');
  await sleep(1200);
  t.notOk(secondStarted, 'the second large transfer is held while the only slot is taken');
  t.equal(h.daemon.http!.server.transfers.waiting, 1, 'one request waits');

  first.resume();
  t.equal(await first.done, big, 'the first transfer completes');
  t.equal(await second.head, 200, 'then the second is served, not refused');
  second.resume();
  t.equal(await second.done, 2 << 20, 'in full');

  await h.daemon.registry.flush();
  let events = await h.daemon.registry.listEvents(MAC);
  for (let i = 0; i < 20 && !events.some((e) => /initramfs/.test(e.stage)); i++) {
    await sleep(100);
    await h.daemon.registry.flush();
    events = await h.daemon.registry.listEvents(MAC);
  }
  const step = events.find((e) => e.stage === 'http initramfs.img');
  t.match(step?.msg, /^sent 2\.0 MiB in .+ \(200\), waited [1-9]\d*\.\d s for a transfer slot$/, 'the timeline says how long the node waited');
  t.notMatch(events.find((e) => e.stage === 'http vmlinuz')?.msg ?? '', /waited/, 'the first did not wait');

  const m = parsePromText((await h.daemon.metrics.scrape()).text);
  t.equal(sumOf(m, 'provisiond_admission_waits_total', { resource: 'transfer' }), 1, 'one wait counted');
  t.ok(sumOf(m, 'provisiond_admission_wait_seconds_sum', { resource: 'transfer' }) >= 1, 'its length in the histogram');
  t.equal(sumOf(m, 'provisiond_admission_waiting', { resource: 'transfer' }), 0, 'nobody waits any more');
});

t.test('a client that leaves while waiting gives its place up', async (t) => {
  const h = await startDaemon(t, '', { http: '  maxTransfers: 1\n' });
  h.write('tftp/vmlinuz', randomBytes(48 << 20));
  h.write('tftp/initramfs.img', randomBytes(2 << 20));
  const first = held(`${h.base}/boot/vmlinuz`);
  await first.head;
  const gone = new AbortController();
  const leaving = fetch(`${h.base}/boot/initramfs.img`, { signal: gone.signal }).catch(() => 'aborted');
  await sleep(300);
  t.equal(h.daemon.http!.server.transfers.waiting, 1);
  gone.abort();
  t.equal(await leaving, 'aborted');
  await sleep(200);
  t.equal(h.daemon.http!.server.transfers.waiting, 0, 'the waiter left the queue');
  first.resume();
  await first.done;
  const after = held(`${h.base}/boot/initramfs.img`);
  t.equal(await after.head, 200);
  after.resume();
  t.equal(await after.done, 2 << 20, 'the slot is free again');
  for (let i = 0; i < 20 && h.daemon.http!.server.transfers.active > 0; i++) await sleep(50);
  t.equal(h.daemon.http!.server.transfers.active, 0, 'no slot leaked');
});

t.test('slots: first come first served, a resize serves waiters, an aborted waiter is skipped', async (t) => {
  const s = new Slots(2);
  const a = await s.acquire();
  const b = await s.acquire();
  t.notOk(a.queued);
  const order: string[] = [];
  const gone = new AbortController();
  const c = s.acquire().then((x) => (order.push('c'), x));
  const d = s.acquire(gone.signal).then(
    (x) => (order.push('d'), x),
    () => (order.push('d aborted'), null),
  );
  const e = s.acquire().then((x) => (order.push('e'), x));
  t.equal(s.waiting, 3);
  gone.abort(new Error('left'));
  await d;
  a.release();
  a.release(); // twice: no second slot freed
  const cs = await c;
  t.ok(cs.queued, 'c waited');
  t.equal(s.active, 2);
  s.resize(3);
  await e;
  t.same(order, ['d aborted', 'c', 'e'], 'in arrival order, the aborted one skipped');
  b.release();
  cs.release();
  t.equal(s.active, 1);
  t.throws(() => new Slots(-1), /whole number/);
  const free = new Slots(0);
  await Promise.all(Array.from({ length: 100 }, () => free.acquire()));
  t.equal(free.waiting, 0, 'limit 0: nobody waits');
});

t.test('slots: a waiter of priority 0 goes before earlier waiters of priority 1', async (t) => {
  const s = new Slots(1);
  const first = await s.acquire();
  const order: string[] = [];
  const stage1 = s.acquire(undefined, 1).then((x) => (order.push('stage-1'), x));
  const image = s.acquire(undefined, 0).then((x) => (order.push('image'), x));
  first.release();
  (await image).release();
  (await stage1).release();
  t.same(order, ['image', 'stage-1'], "a node's image before another's stage-1");
});
