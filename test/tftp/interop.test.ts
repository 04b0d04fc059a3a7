/**
 * The TFTP server against real clients on loopback: curl, tftp-hpa's tftp and atftp, every block
 * size, empty / exactly-one-block / rollover-sized files, netascii, generated files, refusals.
 * A raw socket client (client.ts) does what no real client can be told to do.
 * Every file from the root goes through the native pump here (nativeMinBytes 0, down to the empty
 * file); interop-js.test.ts runs this same suite with the pump off (PVD_TFTP_ENGINE=js), the Node path.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { memoryLogger } from '../../src/log/logger.js';
import { TftpServer, type TransferRecord } from '../../src/servers/tftp/server.js';
import { RawClient } from './client.js';
import { gate, missingCommands } from '../lib/gate.js';

const missing = missingCommands(['curl', 'tftp', 'atftp']);
if (!gate(t, missing.length ? `tftp interop: clients missing (${missing.join(', ')}; apt-get install curl tftp-hpa atftp)` : null)) process.exit(0);

function run(cmd: string, args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 120_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const tmp = mkdtempSync(join(tmpdir(), 'pvd-tftp-interop-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const root = join(tmp, 'root');
const out = join(tmp, 'out');
mkdirSync(join(root, 'sub'), { recursive: true });
mkdirSync(out);
const files: Record<string, Buffer> = {
  empty: Buffer.alloc(0),
  b512: randomBytes(512),
  odd: randomBytes(100_000),
  // 33 MiB: 67,584 blocks of 512, past the 65,535 a 16-bit block number holds.
  big: randomBytes(33 * 1024 * 1024),
};
for (const [name, data] of Object.entries(files)) writeFileSync(join(root, name), data);
writeFileSync(join(root, 'sub', 'text.cfg'), 'DEFAULT linux\nLABEL linux\n  KERNEL vmlinuz\r\n');
writeFileSync(join(tmp, 'secret'), 'outside the root');
symlinkSync(join(tmp, 'secret'), join(root, 'escape'));

const engine = process.env.PVD_TFTP_ENGINE === 'js' ? 'js' : 'native';
const nativeMinBytes = engine === 'js' ? null : 0;
const log = memoryLogger();
const records: TransferRecord[] = [];
const server = new TftpServer({
  root,
  nativeMinBytes,
  listen: '127.0.0.1',
  port: 0,
  timeout: 0.2,
  retries: 3,
  logger: log,
  onTransfer: (r) => records.push(r),
  generate: (path) => {
    if (path === 'gen/hello') return Buffer.from('generated for you\n');
    if (path === 'gen/stream') return Readable.from([randomBytesFixed.subarray(0, 70_000), randomBytesFixed.subarray(70_000)]);
    if (path === 'gen/sized') return { data: Readable.from([Buffer.from('sized stream')]), size: 12 };
    return null;
  },
});
const randomBytesFixed = randomBytes(150_001);
const { port } = await server.listen();
t.teardown(() => server.close());
const url = (name: string) => `tftp://127.0.0.1:${port}/${name}`;

t.test('curl: every file at every block size, checksums equal', async (t) => {
  for (const blksize of [512, 1468, 8192, 65464]) {
    // Not the empty file: curl 7.88 fails a transfer that ends in its first packet ("getpeername() failed
    // with errno 107") against tftpd-hpa just the same; tftp-hpa and atftp fetch it below.
    for (const name of ['b512', 'odd', ...(blksize === 512 ? ['big'] : [])]) {
      const dest = join(out, `curl-${name}-${blksize}`);
      const r = await run('curl', ['-sS', '--tftp-blksize', String(blksize), '-o', dest, url(name)]);
      t.equal(r.code, 0, `curl ${name} blksize ${blksize} exit 0 ${r.stderr}`);
      t.equal(sha(readFileSync(dest)), sha(files[name]!), `curl ${name} blksize ${blksize} checksum`);
    }
  }
});

t.test('tftp-hpa: RFC 1350 lockstep, 512-byte blocks, rollover past block 65535', async (t) => {
  for (const name of ['empty', 'b512', 'big']) {
    const dest = join(out, `hpa-${name}`);
    const r = await run('tftp', ['127.0.0.1', String(port), '-m', 'binary', '-c', 'get', name, dest]);
    t.equal(r.code, 0, `tftp get ${name}`);
    t.equal(sha(readFileSync(dest)), sha(files[name]!), `tftp-hpa ${name} checksum`);
  }
  const rec = records.find((r) => r.file === 'big' && r.blksize === 512 && r.outcome === 'ok');
  t.equal(rec?.bytes, files.big!.length, 'the transfer record counts every byte');
});

t.test('tftp-hpa: netascii mode converts line ends both ways', async (t) => {
  const dest = join(out, 'text.cfg');
  const r = await run('tftp', ['127.0.0.1', String(port), '-m', 'netascii', '-c', 'get', 'sub/text.cfg', dest]);
  t.equal(r.code, 0);
  t.equal(readFileSync(dest, 'utf8'), readFileSync(join(root, 'sub', 'text.cfg'), 'utf8'));
});

t.test('atftp: blksize and windowsize options', async (t) => {
  for (const opts of [['blksize 1468'], ['blksize 8192'], ['blksize 65464'], ['blksize 1468', 'windowsize 16'], ['windowsize 8']]) {
    const dest = join(out, `atftp-${opts.join('-').replaceAll(' ', '')}`);
    const args = [...opts.flatMap((o) => ['--option', o]), '-g', '-r', 'big', '-l', dest, '127.0.0.1', String(port)];
    const r = await run('atftp', args);
    t.equal(r.code, 0, `atftp ${opts.join(', ')} ${r.stderr}`);
    t.equal(sha(readFileSync(dest)), sha(files.big!), `atftp ${opts.join(', ')} checksum`);
  }
  t.ok(records.some((r) => r.windowsize === 16 && r.outcome === 'ok'), 'windowsize 16 granted');
});

t.test('generated files: a buffer, a stream of unknown size, a stream with a size', async (t) => {
  for (const [name, want] of [
    ['gen/hello', Buffer.from('generated for you\n')],
    ['gen/stream', randomBytesFixed],
    ['gen/sized', Buffer.from('sized stream')],
  ] as const) {
    const dest = join(out, name.replace('/', '-'));
    const r = await run('curl', ['-sS', '-o', dest, url(name)]);
    t.equal(r.code, 0, `${name} ${r.stderr}`);
    t.equal(sha(readFileSync(dest)), sha(want), `${name} content`);
  }
  const c = await RawClient.open();
  c.send({ op: 'rrq', filename: 'gen/sized', mode: 'octet', options: { tsize: '0' } }, port);
  const m = await c.next();
  t.same(m?.p, { op: 'oack', options: { tsize: '12' } }, 'tsize of a generated stream is its declared size');
  c.close();
});

t.test('unknown files: error 1 (file not found)', async (t) => {
  const r = await run('curl', ['-sS', '-o', join(out, 'nope'), url('no/such/file')]);
  t.equal(r.code, 68, 'curl exit 68: TFTP file not found');
  const a = await run('tftp', ['127.0.0.1', String(port), '-c', 'get', 'no/such/file', join(out, 'nope2')]);
  t.match(a.stdout + a.stderr, /Error code 1: file not found/i, 'tftp-hpa shows error 1');
});

t.test('atftp: the empty file and the one-block file', async (t) => {
  for (const name of ['empty', 'b512']) {
    for (const opts of [[], ['--option', 'blksize 512']]) {
      const dest = join(out, `atftp-small-${name}-${opts.length}`);
      const r = await run('atftp', [...opts, '-g', '-r', name, '-l', dest, '127.0.0.1', String(port)]);
      t.equal(r.code, 0, `atftp ${name} ${opts.join(' ')}`);
      t.equal(sha(readFileSync(dest)), sha(files[name]!), `atftp ${name} ${opts.join(' ')} checksum`);
    }
  }
});

t.test('path traversal variants are refused with an error packet', async (t) => {
  const c = await RawClient.open();
  t.teardown(() => c.close());
  for (const name of ['../secret', '../../../../etc/passwd', '/etc/passwd', 'sub/../../secret', 'sub\\..\\..\\secret', '..\\secret', 'escape', 'sub/\x01x']) {
    c.send({ op: 'rrq', filename: name, mode: 'octet', options: {} }, port);
    const m = await c.next();
    t.equal(m?.p.op, 'error', `${JSON.stringify(name)} answered with an error`);
    if (m?.p.op === 'error') t.equal(m.p.code, 2, `${JSON.stringify(name)}: access violation (${m.p.message})`);
  }
  // A NUL inside the name cuts the request short: still an error packet, never a file.
  c.socket.send(Buffer.from('\x00\x01sub/text.cfg\x00../../secret\x00octet\x00', 'latin1'), port, '127.0.0.1');
  const m = await c.next();
  t.equal(m?.p.op, 'error', 'NUL in the name: error packet');
  const a = await run('atftp', ['-g', '-r', '../secret', '-l', join(out, 'sec'), '127.0.0.1', String(port)]);
  t.not(a.code, 0, 'atftp ../secret fails');
  t.notOk(existsSync(join(out, 'sec')) && readFileSync(join(out, 'sec'), 'utf8').includes('outside'), 'nothing from outside the root arrived');
});

t.test('write requests are refused: read-only server', async (t) => {
  writeFileSync(join(out, 'upload'), 'data');
  const r = await run('tftp', ['127.0.0.1', String(port), '-m', 'binary', '-c', 'put', join(out, 'upload'), 'uploaded']);
  t.match(r.stdout + r.stderr, /read-only|violation|Error code 2/i, `tftp put refused: ${r.stdout}${r.stderr}`);
  t.notOk(existsSync(join(root, 'uploaded')), 'nothing written');
});

t.test('duplicate ACKs send nothing (no Sorcerer\'s Apprentice), foreign ports get error 5', async (t) => {
  const c = await RawClient.open();
  const stranger = await RawClient.open();
  t.teardown(() => (c.close(), stranger.close()));
  c.send({ op: 'rrq', filename: 'odd', mode: 'octet', options: {} }, port);
  const d1 = await c.next();
  t.equal(d1?.p.op === 'data' && d1.p.block, 1);
  const tid = d1!.port;
  c.send({ op: 'ack', block: 1 }, tid);
  c.send({ op: 'ack', block: 1 }, tid);
  c.send({ op: 'ack', block: 1 }, tid);
  const got = await c.drain(120);
  t.equal(got.filter((p) => p.op === 'data' && p.block === 2).length, 1, 'three ACK 1 -> one DATA 2');
  stranger.send({ op: 'ack', block: 2 }, tid);
  const e = await stranger.next();
  t.same(e?.p.op === 'error' && e.p.code, 5, 'a packet from another port gets error 5');
  // the real client carries on undisturbed
  c.send({ op: 'ack', block: 2 }, tid);
  const d3 = await c.next();
  t.equal(d3?.p.op === 'data' && d3.p.block, 3, 'transfer continues');
  c.send({ op: 'error', code: 0, message: 'enough' }, tid);
});

t.test('UEFI size probe (tsize, then error 8) is normal; an OACK refused falls back cleanly', async (t) => {
  const c = await RawClient.open();
  t.teardown(() => c.close());
  const before = log.lines.filter((l) => l.level === 'warn' || l.level === 'error').length;
  c.send({ op: 'rrq', filename: 'odd', mode: 'octet', options: { tsize: '0', blksize: '1468' } }, port);
  const o = await c.next();
  t.same(o?.p, { op: 'oack', options: { blksize: '1468', tsize: '100000' } });
  c.send({ op: 'error', code: 8, message: 'user aborted' }, o!.port);
  // then the real fetch, as EDK2 does it
  const data = await c.get(port, 'odd', { blksize: '1468' });
  t.equal(sha(data), sha(files.odd!));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(log.lines.filter((l) => l.level === 'warn' || l.level === 'error').length, before, 'nothing logged as a failure');
  t.ok(records.some((r) => r.outcome === 'probe'), 'recorded as a probe');
  // a client that refuses the options outright, then asks again without
  c.send({ op: 'rrq', filename: 'b512', mode: 'octet', options: { blksize: '1024' } }, port);
  const o2 = await c.next();
  c.send({ op: 'error', code: 8, message: 'bad option' }, o2!.port);
  t.equal(sha(await c.get(port, 'b512')), sha(files.b512!));
  t.ok(records.some((r) => r.outcome === 'options-refused'));
});

t.test('a stalled transfer is retried with backoff, then dropped and freed', async (t) => {
  const c = await RawClient.open();
  t.teardown(() => c.close());
  const start = Date.now();
  c.send({ op: 'rrq', filename: 'odd', mode: 'octet', options: {} }, port);
  const got = await c.drain(3400);
  const data1 = got.filter((p) => p.op === 'data' && p.block === 1).length;
  t.equal(data1, 4, 'block 1 sent once and retried 3 times (retries: 3)');
  const rec = records.find((r) => r.client.port === c.socket.address().port && r.file === 'odd');
  t.equal(rec?.outcome, 'timeout', 'ended as a timeout');
  t.ok(Date.now() - start >= 0.2 + 0.4 + 0.8 + 1.6, 'backoff doubled the waits');
  t.equal(server.stats.active, 0, 'no transfer left behind');
});

t.test('600 concurrent transfers complete with bounded state', async (t) => {
  // Its own server with the default 1 s timeout: 600 transfers and their clients share this one process.
  const busy = new TftpServer({ root, listen: '127.0.0.1', port: 0, nativeMinBytes, logger: memoryLogger() });
  const { port: busyPort } = await busy.listen();
  const clients = await Promise.all(Array.from({ length: 600 }, () => RawClient.open()));
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, busy.stats.active)), 5);
  // Every client holds its first block unacknowledged until all have one (or 5 s pass): 600 at once, however fast each is.
  let arrived = 0;
  let release!: () => void;
  const open = new Promise<void>((r) => (release = r));
  const holdTimer = setTimeout(release, 5000);
  const gate = { arrived: () => void (++arrived === clients.length && release()), open };
  const results = await Promise.allSettled(clients.map((c) => c.get(busyPort, 'odd', { blksize: '1468' }, gate)));
  clearTimeout(holdTimer);
  clearInterval(timer);
  clients.forEach((c) => c.close());
  await busy.close();
  const good = results.filter((r) => r.status === 'fulfilled' && sha(r.value) === sha(files.odd!)).length;
  t.equal(good, 600, 'all 600 checksums equal');
  t.ok(peak >= 512, `at least 512 transfers at once (peak ${peak})`);
  t.equal(busy.stats.active, 0, 'closing the server frees every transfer');
});

t.test(`every octet transfer of a file from the root ran in the ${engine} engine`, async (t) => {
  t.equal(server.native, engine === 'native', `native pump ${engine === 'native' ? 'built and in use' : 'off'}`);
  const fromRoot = records.filter((r) => r.origin === 'root' && r.file !== 'sub/text.cfg');
  t.ok(fromRoot.length >= 20, `${fromRoot.length} transfers from the root`);
  t.same([...new Set(fromRoot.map((r) => r.engine))], [engine], `all by ${engine}`);
  t.ok(records.some((r) => r.file === 'empty' && r.outcome === 'ok' && r.bytes === 0), 'the empty file');
  t.ok(records.some((r) => r.file === 'big' && r.outcome === 'ok' && r.blksize === 512 && r.bytes === files.big!.length), 'the rollover file at 512');
  const text = records.find((r) => r.file === 'sub/text.cfg');
  t.equal(text?.engine, 'js', 'netascii is converted and sent by node');
  const gen = records.find((r) => r.file === 'gen/hello');
  t.equal(gen?.engine, 'js', 'generated content is sent by node');
});
