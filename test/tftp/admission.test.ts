/**
 * TFTP in a boot storm (issue 22): with every transfer slot taken, a new request is never answered
 * with an error (a PXE ROM given one does not boot): it waits its turn, its resends are recognised,
 * and it is served when a slot frees; with no room left to wait, requests are dropped unanswered
 * (the client resends). A real client: curl.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log/logger.js';
import { TftpServer, type TftpDropReason } from '../../src/servers/tftp/server.js';
import { gate, missingCommands } from '../lib/gate.js';
import { RawClient } from './client.js';

const root = mkdtempSync(join(tmpdir(), 'pvd-tftp-admission-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const loader = randomBytes(70_000);
writeFileSync(join(root, 'undionly.kpxe'), loader);

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => execFile(cmd, args, { timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr })));
}

const missing = missingCommands(['curl']);
if (gate(t, missing.length ? `${missing.join(', ')} not installed (apt-get install curl)` : null)) {
  t.test('a request beyond maxTransfers waits, its resends are duplicates, and it is served when a slot frees', async (t) => {
    const drops: TftpDropReason[] = [];
    const waited: number[] = [];
    const server = new TftpServer({ root, listen: '127.0.0.1', port: 0, maxTransfers: 1, nativeMinBytes: null, timeout: 1, retries: 1, logger: silentLogger(), onDrop: (r) => drops.push(r), onWaited: (s) => waited.push(s) });
    const { port } = await server.listen();
    t.teardown(() => server.close());

    // The first client takes the only slot and stalls after the first block (it never ACKs it).
    const staller = await RawClient.open();
    t.teardown(() => staller.close());
    staller.send({ op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: {} }, port);
    t.equal((await staller.next())?.p.op, 'data', 'the first transfer started');

    // A real client meanwhile: curl resends its request while it waits; it gets the file, no error.
    const dest = join(root, 'got');
    const curl = run('curl', ['-sS', '--tftp-blksize', '1468', '-o', dest, `tftp://127.0.0.1:${port}/undionly.kpxe`]);
    await new Promise((r) => setTimeout(r, 300));
    t.equal(server.load.waiting, 1, 'the second request waits for the slot');
    const got = await curl;
    t.equal(got.code, 0, `curl got the file after waiting (${got.out.trim()})`);
    t.same(readFileSync(dest), loader, 'all of it');
    t.equal(waited.length, 1, 'one request waited');
    t.ok(waited[0]! >= 1, `for as long as the stalled transfer held the slot (${waited[0]!.toFixed(1)} s)`);
    t.equal(server.load.waiting, 0);
  });

  t.test('with no room left to wait, requests are dropped unanswered, never refused', async (t) => {
    const drops: TftpDropReason[] = [];
    const server = new TftpServer({ root, listen: '127.0.0.1', port: 0, maxTransfers: 1, nativeMinBytes: null, timeout: 2, retries: 2, logger: silentLogger(), onDrop: (r) => drops.push(r) });
    const { port } = await server.listen();
    t.teardown(() => server.close());
    const clients = await Promise.all(Array.from({ length: 12 }, () => RawClient.open()));
    t.teardown(() => clients.forEach((c) => c.close()));
    for (const c of clients) c.send({ op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: {} }, port);
    const first = await Promise.all(clients.map((c) => c.next(500)));
    t.equal(first.filter((m) => m?.p.op === 'data').length, 1, 'one transfer runs');
    t.equal(first.filter((m) => m?.p.op === 'error').length, 0, 'nobody got an error');
    t.equal(server.load.waiting, 8, 'eight wait (8 x maxTransfers)');
    t.equal(drops.filter((d) => d === 'busy').length, 3, 'the rest were dropped unanswered, for their resends');
    // A waiting client's resend is recognised.
    clients[5]!.send({ op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: {} }, port);
    await new Promise((r) => setTimeout(r, 100));
    t.ok(drops.includes('duplicate'), 'a resend of a waiting request is a duplicate');
  });
}
