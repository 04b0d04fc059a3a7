/**
 * The pacer keeps the event loop turning for the servers that share it: eight clients asking for big
 * pages at once must not hold the loop between two reads of the DHCP socket for more than a slice
 * and one item, and each of them still gets its work done, in turns.
 */
import t from 'tap';
import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import { Pacer } from '../../src/util/pacer.js';

const busy = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

t.test('eight paced workers leave the loop to a UDP server: no datagram waits behind them', async (t) => {
  const pacer = new Pacer(2);
  const server = createSocket('udp4');
  t.teardown(() => server.close());
  const delays: number[] = [];
  const now = () => performance.timeOrigin + performance.now();
  server.on('message', (msg) => delays.push(now() - msg.readDoubleLE(0)));
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;

  // Eight "list page" requests: 400 items of 0.25 ms each (100 ms of work apiece, 800 ms in all).
  const finished: number[] = [];
  const worker = async (id: number) => {
    for (let i = 0; i < 400; i++) {
      await pacer.pace();
      busy(0.25);
    }
    finished.push(id);
  };
  // A datagram every 5 ms while they run, from a worker thread (its own event loop), stamped with its
  // send time: the delay measured is how long it waited for this loop to read it.
  const sender = new Worker(
    `const { createSocket } = require('node:dgram');
     const { parentPort, workerData } = require('node:worker_threads');
     const s = createSocket('udp4');
     let sent = 0;
     const timer = setInterval(() => {
       const b = Buffer.alloc(8);
       b.writeDoubleLE(performance.timeOrigin + performance.now(), 0);
       s.send(b, workerData.port, '127.0.0.1');
       sent++;
     }, 5);
     parentPort.on('message', () => { clearInterval(timer); s.close(() => parentPort.postMessage(sent)); });`,
    { eval: true, workerData: { port } },
  );
  await new Promise((r) => sender.once('online', r));
  const started = performance.now();
  await Promise.all(Array.from({ length: 8 }, (_, i) => worker(i)));
  const took = performance.now() - started;
  sender.postMessage('stop');
  const sent = await new Promise<number>((r) => sender.once('message', r));
  await sender.terminate();
  await new Promise((r) => setTimeout(r, 50));

  t.equal(finished.length, 8, 'every paced worker finished');
  t.ok(pacer.turns >= 8 * 100 * 0.25 / 2 / 2, `the work was spread over ${pacer.turns} turns of the loop`);
  t.ok(took < 800 * 4, `800 ms of paced work took ${took.toFixed(0)} ms: pacing costs little when the loop has nothing else to do`);
  t.equal(delays.length, sent, `all ${sent} datagrams were read`);
  const worst = Math.max(...delays);
  // Unpaced (a setImmediate per 100 items), the eight workers hold the loop 8 x 25 ms = 200 ms at a time.
  t.ok(worst < 60, `the longest a datagram waited to be read was ${worst.toFixed(1)} ms (a slice is 2 ms)`);
});

t.test('a slice lets work go on without waiting while it has time left', async (t) => {
  const pacer = new Pacer(50);
  await pacer.pace(); // takes a turn: the slice starts
  const before = pacer.turns;
  for (let i = 0; i < 10; i++) await pacer.pace();
  t.equal(pacer.turns, before, 'ten more pace() calls inside the 50 ms slice took no turn');
  t.throws(() => new Pacer(0), /sliceMs must be > 0/);
});
