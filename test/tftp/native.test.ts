/**
 * The native pump's life around the transfers (interop.test.ts proves its transfers with real
 * clients): with the pump off (config tftp.engine: js) everything is served by Node; the pump gets
 * its busy-poll setting as an argument; a pump killed mid-transfer ends that
 * transfer as an error and the next request gets a fresh pump; closing the server tells the clients
 * of native transfers and records them as aborted.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger } from '../../src/log/logger.js';
import { TftpServer, type TransferRecord } from '../../src/servers/tftp/server.js';
import { RawClient } from './client.js';
import { gate, missingCommands } from '../lib/gate.js';

if (!gate(t, missingCommands(['curl']).length ? 'tftp native test: needs curl' : null)) process.exit(0);

const tmp = mkdtempSync(join(tmpdir(), 'pvd-tftp-native-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const root = join(tmp, 'root');
mkdirSync(root);
const big = randomBytes(3 * 1024 * 1024 + 7);
writeFileSync(join(root, 'big'), big);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function curl(port: number, name: string, blksize = 1468): Promise<string> {
  const dest = join(tmp, `got-${Math.random()}`);
  return new Promise((resolve) =>
    execFile('curl', ['-sS', '--tftp-blksize', String(blksize), '-o', dest, `tftp://127.0.0.1:${port}/${name}`], { timeout: 60_000 }, (err) => {
      const sum = !err && existsSync(dest) ? sha(readFileSync(dest)) : `curl failed: ${err?.message}`;
      rmSync(dest, { force: true });
      resolve(sum);
    }),
  );
}

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Our child processes running the pump (`comm` is cut to 15 characters). */
function pumpPids(): number[] {
  const kids = readdirSync(`/proc/${process.pid}/task`).flatMap((tid) =>
    readFileSync(`/proc/${process.pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
  );
  return kids.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('provisiond-tftp');
    } catch {
      return false;
    }
  });
}

t.test('with the pump off (tftp.engine: js) node serves everything', async (t) => {
  const records: TransferRecord[] = [];
  const server = new TftpServer({ root, listen: '127.0.0.1', port: 0, nativeMinBytes: null, logger: memoryLogger(), onTransfer: (r) => records.push(r) });
  const { port } = await server.listen();
  t.teardown(() => server.close());
  t.equal(server.native, false, 'no pump');
  t.equal(await curl(port, 'big'), sha(big), 'the big file arrives whole');
  t.equal(records[0]?.engine, 'js', 'sent by node');
  t.equal(records[0]?.bytes, big.length);
  t.same(pumpPids(), [], 'no pump process was started');
});

t.test('the pump gets tftp.pumpSpinUs as its argument, and a bad value is refused', async (t) => {
  t.throws(() => new TftpServer({ root, pumpSpinUs: -1, logger: memoryLogger() }), TypeError);
  t.throws(() => new TftpServer({ root, pumpSpinUs: 20_000, logger: memoryLogger() }), TypeError);
  const records: TransferRecord[] = [];
  const server = new TftpServer({ root, listen: '127.0.0.1', port: 0, nativePumps: 1, pumpSpinUs: 0, logger: memoryLogger(), onTransfer: (r) => records.push(r) });
  const { port } = await server.listen();
  t.teardown(() => server.close());
  t.equal(await curl(port, 'big'), sha(big), 'the big file arrives whole with polling off');
  t.equal(records[0]?.engine, 'native', 'sent by the pump');
  const pids = pumpPids();
  t.equal(pids.length, 1, 'one pump');
  t.same(readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(1), ['0'], 'started with its spin setting');
});

t.test('a pump killed mid-transfer: that transfer fails, the next one gets a new pump', async (t) => {
  const log = memoryLogger();
  const records: TransferRecord[] = [];
  const server = new TftpServer({ root, listen: '127.0.0.1', port: 0, timeout: 0.5, nativePumps: 1, logger: log, onTransfer: (r) => records.push(r) });
  const { port } = await server.listen();
  t.teardown(() => server.close());
  t.equal(server.native, true, 'pump built');
  const c = await RawClient.open();
  t.teardown(() => c.close());
  c.send({ op: 'rrq', filename: 'big', mode: 'octet', options: {} }, port);
  const d1 = await c.next();
  t.equal(d1?.p.op === 'data' && d1.p.block, 1, 'block 1 from the pump');
  const pids = pumpPids();
  t.equal(pids.length, 1, 'one pump process');
  process.kill(pids[0]!, 'SIGKILL');
  await until('the failed record', () => records.length > 0);
  t.equal(records[0]?.outcome, 'error', 'the transfer ended as an error');
  t.match(records[0]?.reason, /native pump exited/, records[0]?.reason ?? '');
  t.equal(server.stats.active, 0, 'nothing left behind');
  t.ok(log.lines.some((l) => l.level === 'error' && l.msg === 'tftp native pump died'), 'logged as an error');
  t.equal(await curl(port, 'big'), sha(big), 'the next fetch is whole');
  t.equal(records[1]?.engine, 'native', 'and native again');
  t.equal(server.native, true);
});

t.test('closing the server aborts native transfers: the client hears it, the record says aborted', async (t) => {
  const records: TransferRecord[] = [];
  const server = new TftpServer({ root, listen: '127.0.0.1', port: 0, logger: memoryLogger(), onTransfer: (r) => records.push(r) });
  const { port } = await server.listen();
  const c = await RawClient.open();
  t.teardown(() => c.close());
  c.send({ op: 'rrq', filename: 'big', mode: 'octet', options: { blksize: '8192' } }, port);
  const o = await c.next();
  t.equal(o?.p.op, 'oack');
  c.send({ op: 'ack', block: 0 }, o!.port);
  const d1 = await c.next();
  t.equal(d1?.p.op === 'data' && d1.p.data.length, 8192, 'first block of 8192');
  await server.close();
  t.same(records.map((r) => [r.engine, r.outcome, r.reason]), [['native', 'aborted', 'server shutting down']], 'recorded before close() resolves');
  const e = await c.next();
  t.same(e?.p.op === 'error' && [e.p.code, e.p.message], [0, 'server shutting down'], 'the client got an error packet');
  await until('the pump to exit', () => pumpPids().length === 0);
  t.pass('no pump left running');
});
