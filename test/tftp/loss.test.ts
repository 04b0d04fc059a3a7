/**
 * Under loss: 5% of frames dropped each way, plus duplication and reordering, on a veth link between
 * two namespaces this test creates (server ns <-> bridge ns <-> client ns). The kernel here has no
 * sch_netem, so the impairment is a userspace bridge (lossy-bridge.py) forwarding raw frames between
 * the two veths of the middle namespace. A 16 MiB file is fetched 20 times lockstep by curl (blksize
 * 8192 on a 9000-byte MTU, 10 at a time) and 20 times with windowsize 8 (5 at a time) by fetch.ts:
 * atftp 0.8, the only windowsize client here, stops acknowledging after one duplicate and aborts on
 * its first timeout, so it cannot finish under loss against any server. Every checksum must match.
 * Those 40 run in the native pump (the default for a file this size); a second server with the pump
 * off (the Node path) then gets 6 lockstep and 6 windowed transfers through the same link.
 */
import t from 'tap';
import { type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO as repo } from '../lib/paths.js';
import { gate, missingCommands, rootMissing } from '../lib/gate.js';
import { testLab } from '../lib/netns.js';
import { sleep } from '../lib/sleep.js';
import { makeStatedir } from '../lib/statedir.js';
import { TS_NODE_ARGS } from '../ts-child.js';

const tools = missingCommands(['curl', 'ethtool']);
if (!gate(t, rootMissing() ?? (tools.length ? `needs ${tools.join(' and ')}` : null))) process.exit(0);

const id = process.pid;
const lab = testLab(t, 'pvd-tftp');
const [S, M, C] = lab.nss('s', 'm', 'c');
const tmp = makeStatedir(t, {}, { prefix: 'pvd-tftp-loss-' });
const jumbo = { mtu: 9000 };
lab.link({ ns: S, dev: `pvds${id}`, addr: '10.77.0.1/24' }, { ns: M, dev: `pvdms${id}` }, jumbo);
lab.link({ ns: C, dev: `pvdc${id}`, addr: '10.77.0.2/24' }, { ns: M, dev: `pvdmc${id}` }, jumbo);
// Checksums must be filled in before the frames reach the bridge's raw socket.
lab.exec(S, 'ethtool', ['-K', `pvds${id}`, 'tx', 'off']);
lab.exec(C, 'ethtool', ['-K', `pvdc${id}`, 'tx', 'off']);

async function startLine(child: ChildProcess, re: RegExp): Promise<RegExpExecArray> {
  for await (const line of createInterface({ input: child.stdout! })) {
    const m = re.exec(line);
    if (m) return m;
  }
  throw new Error(`${child.spawnargs.join(' ')} did not start`);
}

const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
await startLine(lab.spawn(M, python, [join(repo, 'test/tftp/lossy-bridge.py'), `pvdms${id}`, `pvdmc${id}`, '0.05', '0.02', '0.05', String(id)], { stdio: ['ignore', 'pipe', 'inherit'] }), /^ready/);
const root = join(tmp, 'root');
mkdirSync(root);
const file = randomBytes(16 * 1024 * 1024);
writeFileSync(join(root, 'image'), file);
const want = createHash('sha256').update(file).digest('hex');
type Rec = { outcome: string; retransmits?: number; windowsize?: number; engine?: string };
async function serve(nativeMinBytes?: null): Promise<{ port: number; records: Rec[] }> {
  const opts = { root, listen: '10.77.0.1', port: 0, timeout: 0.1, retries: 8, nativeMinBytes };
  const child = lab.spawn(S, process.execPath, [...TS_NODE_ARGS, join(repo, 'test/tftp/serve.ts'), JSON.stringify(opts)], { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = Number((await startLine(child, /^listening (\d+)/))[1]);
  const records: Rec[] = [];
  void (async () => {
    for await (const line of createInterface({ input: child.stdout! })) if (line.startsWith('{')) records.push(JSON.parse(line));
  })();
  return { port, records };
}
let { port, records } = await serve();

function run(args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((res) => {
    const child = lab.spawn(C, args[0]!, args.slice(1), { cwd: repo, stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      res({ code, stdout });
    });
  });
}

async function curlGet(i: number): Promise<string> {
  const dest = join(tmp, `got-${i}`);
  const r = await run(['curl', '-s', '--tftp-blksize', '8192', '-o', dest, `tftp://10.77.0.1:${port}/image`]);
  const sum = r.code === 0 && existsSync(dest) ? createHash('sha256').update(readFileSync(dest)).digest('hex') : `curl exit ${r.code}`;
  rmSync(dest, { force: true });
  return sum;
}

async function windowedGet(): Promise<string> {
  const r = await run([process.execPath, ...TS_NODE_ARGS, join(repo, 'test/tftp/fetch.ts'), '10.77.0.1', String(port), 'image', '8192', '8']);
  return r.code === 0 ? r.stdout.split(' ')[0]! : `fetch exit ${r.code}`;
}

async function rounds(total: number, atOnce: number, one: (i: number) => Promise<string>): Promise<string[]> {
  const sums: string[] = [];
  for (let i = 0; i < total; i += atOnce) sums.push(...(await Promise.all(Array.from({ length: Math.min(atOnce, total - i) }, (_, k) => one(i + k)))));
  return sums;
}

t.test('20 lockstep transfers (curl) of 16 MiB through 5% loss, 2% duplication, 5% reordering', async (t) => {
  const sums = await rounds(20, 10, curlGet);
  t.equal(sums.filter((s) => s === want).length, 20, `all 20 checksums equal ${sums.filter((s) => s !== want).join(', ')}`);
  t.ok(records.filter((r) => r.outcome === 'ok').reduce((n, r) => n + (r.retransmits ?? 0), 0) > 0, 'the loss was real: blocks were resent');
  t.same([...new Set(records.map((r) => r.engine))], ['native'], 'every transfer ran in the native pump');
});

t.test('20 windowed transfers (windowsize 8) of 16 MiB through the same link', async (t) => {
  const before = records.length;
  const sums = await rounds(20, 5, windowedGet);
  t.equal(sums.filter((s) => s === want).length, 20, `all 20 checksums equal ${sums.filter((s) => s !== want).join(', ')}`);
  await sleep(200);
  // Not every server record says ok: when the client's final ACK is lost the client is done and gone.
  t.ok(records.slice(before).some((r) => r.windowsize === 8 && r.outcome === 'ok'), 'windowsize 8 was negotiated');
  t.same([...new Set(records.map((r) => r.engine))], ['native'], 'every transfer ran in the native pump');
});

t.test('the Node path (pump off): 6 lockstep and 6 windowed transfers through the same link', async (t) => {
  ({ port, records } = await serve(null));
  const sums = [...(await rounds(6, 6, curlGet)), ...(await rounds(6, 6, windowedGet))];
  t.equal(sums.filter((s) => s === want).length, 12, `all 12 checksums equal ${sums.filter((s) => s !== want).join(', ')}`);
  await sleep(200);
  t.ok(records.length >= 6, `${records.length} transfers recorded`);
  t.same([...new Set(records.map((r) => r.engine))], ['js'], 'every transfer ran in node');
  t.ok(records.reduce((n, r) => n + (r.retransmits ?? 0), 0) > 0, 'blocks were resent');
});
