/**
 * Everything a stranger on the provisioning network can send to TFTP, fuzzed:
 * - the codec, option negotiation and path rules: 100,000 coverage-guided inputs (test/lib/fuzz.ts)
 *   with the invariants the server relies on (no exception but a decode error, granted options
 *   within the limits, paths that stay inside the root);
 * - a real `provisiond serve`: 100,000 hostile datagrams on its request port (mutated requests with
 *   malformed options, huge blksize/windowsize, bad modes, truncations; ACKs, DATA and ERRORs where
 *   requests belong), and stray packets at live transfers from another port and from the client's
 *   own (runts, other opcodes, ACKs for blocks never sent). Every datagram is accounted for in the
 *   metrics (ignored by reason, refused, or a transfer), the live transfers complete intact, tftp-hpa
 *   fetches byte-exact files right after, and the daemon's descriptors come back to where they were.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodePacket, encodePacket } from '../../src/protocol/tftp/packet.js';
import { mutate, rng, runGuided } from '../lib/fuzz.js';
import { startFuzzDaemon, until } from '../lib/fuzz-daemon.js';
import { gate, missingCommands } from '../lib/gate.js';
import { sumOf } from '../lib/prom-text.js';
import { sleep } from '../lib/sleep.js';

const COUNT = Number(process.env.FUZZ_COUNT ?? 100_000); // FUZZ_COUNT: a shorter run while debugging

t.test('the codec, option negotiation and paths: 100,000 coverage-guided inputs', async (t) => {
  const report = await runGuided('tftp', COUNT, 11);
  t.same(report.findings, [], 'no input throws anything but a decode error, or breaks an invariant');
  t.equal(report.runs, COUNT);
  t.ok(report.blocks > report.seedBlocks, `coverage grew beyond the seeds (${report.seedBlocks} -> ${report.blocks} blocks, ${report.corpus} inputs kept)`);
});

if (!gate(t, missingCommands(['tftp']).length ? 'tftp fuzz: needs tftp-hpa' : null)) process.exit(0);

const small = randomBytes(20_000);
const big = randomBytes(3 << 20); // large enough for the native pump
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Sends an RRQ from `sock` and resolves with the transfer's port (where its first packet came from). */
function open(sock: Socket, port: number, file: string, options: Record<string, string>): Promise<{ port: number; first: Buffer }> {
  return new Promise((resolve) => {
    sock.once('message', (msg, rinfo) => resolve({ port: rinfo.port, first: msg }));
    sock.send(encodePacket({ op: 'rrq', filename: file, mode: 'octet', options }), port, '127.0.0.1');
  });
}

t.test('a real daemon: 100,000 hostile datagrams, strays at live transfers, then real clients', async (t) => {
  const d = await startFuzzDaemon(t, { 'tftp/small.bin': { content: small }, 'tftp/big.bin': { content: big } });
  const ignored = (reason: string) => d.count('provisiond_tftp_packets_ignored_total', { reason });
  /** Datagrams on the request port the daemon dealt with: ignored there (by reason), refused, or a transfer. */
  const accounted = async () => {
    const m = await d.metrics();
    return (
      sumOf(m, 'provisiond_tftp_packets_ignored_total') -
      sumOf(m, 'provisiond_tftp_packets_ignored_total', { reason: 'stray' }) +
      sumOf(m, 'provisiond_tftp_requests_refused_total') +
      sumOf(m, 'provisiond_tftp_transfers_started_total')
    );
  };

  // Live transfers, one per engine (the small file in Node, the big one in the native pump): their
  // client waits while strangers and its own socket send what does not belong.
  for (const [file, content] of [['small.bin', small], ['big.bin', big]] as const) {
    const client = createSocket('udp4');
    const stranger = createSocket('udp4');
    await Promise.all([new Promise<void>((r) => client.bind(0, '127.0.0.1', r)), new Promise<void>((r) => stranger.bind(0, '127.0.0.1', r))]);
    const strayBefore = await ignored('stray');
    const { port: tid, first } = await open(client, d.tftpPort, file, { blksize: '512', tsize: '0' });
    t.equal(decodePacket(first).op, 'oack', `${file}: the transfer answered with its OACK`);
    let strays = 0;
    const r = rng(5);
    for (let i = 0; i < 300; i++) {
      // from another port: answered with error 5, the transfer left alone (paced: a burst larger
      // than a socket's receive buffer is dropped by the kernel before anyone can count it)
      stranger.send(encodePacket({ op: 'ack', block: i % 3 }), tid, '127.0.0.1');
      strays++;
      if (i % 50 === 49) await sleep(50);
    }
    for (let i = 0; i < 100; i++) {
      const kind = i % 4;
      const pkt =
        kind === 0
          ? Buffer.from([0, 4, 0].slice(0, 1 + Math.floor(r() * 3))) // a runt
          : kind === 1
            ? encodePacket({ op: 'data', block: 1, data: Buffer.from('x') }) // another opcode
            : kind === 2
              ? encodePacket({ op: 'ack', block: 500 }) // a block never sent (OACK phase: not 0)
              : Buffer.from([0, 9, 1, 2, 3]); // an unknown opcode
      client.send(pkt, tid, '127.0.0.1');
      strays++;
    }
    await sleep(200);
    // Now the client does its job: ACK 0, then every block in order.
    const got: Buffer[] = [];
    const done = new Promise<void>((resolve) => {
      client.on('message', (msg, rinfo) => {
        if (rinfo.port !== tid) return;
        const p = decodePacket(msg);
        if (p.op !== 'data') return;
        if (p.block === ((got.length + 1) & 0xffff)) got.push(p.data);
        client.send(encodePacket({ op: 'ack', block: p.block }), tid, '127.0.0.1');
        if (p.data.length < 512) resolve();
      });
    });
    client.send(encodePacket({ op: 'ack', block: 0 }), tid, '127.0.0.1');
    await done;
    t.equal(sha(Buffer.concat(got)), sha(content), `${file}: the live transfer completed byte for byte through ${strays} stray packets`);
    const counted = await until(() => ignored('stray'), (v) => v - strayBefore >= strays, 10_000);
    // Duplicate ACKs under a slow loop may add a few more; none of ours may be missing.
    t.ok(counted - strayBefore >= strays && counted - strayBefore <= strays + 20, `${file}: the strays are counted (${counted - strayBefore} for ${strays} sent)`);
    client.close();
    stranger.close();
  }

  const socketsBefore = d.sockets();
  const rssBefore = d.rss();

  // 100,000 hostile datagrams on the request port, at most WINDOW not yet accounted for in the
  // metrics at any time: a burst beyond the socket's receive buffer would be dropped by the kernel,
  // uncounted by anyone, and hide a datagram the daemon lost.
  const seeds = [
    encodePacket({ op: 'rrq', filename: 'small.bin', mode: 'octet', options: { blksize: '1468', tsize: '0', windowsize: '8', timeout: '1' } }),
    encodePacket({ op: 'rrq', filename: 'missing.bin', mode: 'octet', options: { blksize: '99999999', windowsize: '65535' } }),
    encodePacket({ op: 'rrq', filename: 'pxelinux.cfg/01-52-54-00-00-00-01', mode: 'netascii', options: {} }),
    encodePacket({ op: 'rrq', filename: '../../etc/passwd', mode: 'octet', options: {} }),
    encodePacket({ op: 'rrq', filename: 'small.bin', mode: 'mail', options: {} }),
    encodePacket({ op: 'wrq', filename: 'upload.bin', mode: 'octet', options: { tsize: '100' } }),
    encodePacket({ op: 'ack', block: 1 }),
    encodePacket({ op: 'data', block: 1, data: Buffer.from('hello') }),
    encodePacket({ op: 'error', code: 5, message: 'unknown' }),
  ];
  const dict = ['blksize', 'tsize', 'timeout', 'windowsize', 'octet', 'netascii', 'mail', '../', '\0', '65464', '4294967296', '-1'].map((s) => Buffer.from(s));
  const senders: Socket[] = [];
  for (let i = 0; i < 8; i++) {
    const s = createSocket('udp4');
    s.on('message', () => {}); // errors and data of transfers nobody acknowledges
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    senders.push(s);
  }
  const base = await accounted();
  const r = rng(2026);
  const WINDOW = 200;
  let sent = 0;
  const began = Date.now();
  while (sent < COUNT) {
    const stop = Math.min(COUNT, sent + WINDOW / 2);
    for (; sent < stop; sent++) {
      const input = sent % 50 === 0 ? randomBytes(Math.floor(r() * 700)) : mutate(seeds[Math.floor(r() * seeds.length)]!, r, seeds, dict, 1500);
      senders[sent % senders.length]!.send(input, d.tftpPort, '127.0.0.1');
    }
    const target = base + sent - WINDOW / 2;
    if ((await until(accounted, (v) => v >= target, 20_000, 5)) < target) break;
  }
  const total = (await until(accounted, (v) => v >= base + COUNT, 20_000)) - base;
  t.equal(sent, COUNT, `${COUNT} datagrams sent in ${((Date.now() - began) / 1000).toFixed(1)} s`);
  t.equal(total, COUNT, 'every datagram is accounted for: ignored by reason, refused, or a transfer');
  t.ok((await ignored('malformed')) > 0 && (await ignored('unexpected')) > 0, 'malformed and unexpected datagrams are counted by reason');
  for (const s of senders) s.close();

  // Right after: real clients get byte-exact files, from the Node engine and the native pump.
  const dir = d.statedir;
  for (const file of ['small.bin', 'big.bin']) {
    const dest = join(dir, `got-${file}`);
    await promisify(execFile)('tftp', ['127.0.0.1', String(d.tftpPort), '-m', 'binary', '-c', 'get', file, dest]);
    t.equal(sha(readFileSync(dest)), sha(file === 'small.bin' ? small : big), `tftp-hpa fetches ${file} intact after the fuzz`);
  }
  t.ok(d.serve.running, 'the daemon is still running');
  // The transfers nobody acknowledged time out (timeout 1 s, 2 retries) and give their sockets back.
  const sockets = await until(() => d.sockets(), (v) => v <= socketsBefore, 30_000);
  t.ok(sockets <= socketsBefore, `open sockets back to ${sockets} (${socketsBefore} before)`);
  const rss = d.rss();
  t.ok(rss < rssBefore + 200 * 1024 * 1024, `resident memory ${(rss / 1048576).toFixed(0)} MiB (${(rssBefore / 1048576).toFixed(0)} MiB before)`);
});
