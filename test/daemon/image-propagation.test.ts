/**
 * VNFS images across two servers on one PostgreSQL (issue 19): each serves its own statedir; an
 * image rebuilt on A (through A's admin API) is published in the database, B learns its sha256 and
 * fetches it from A (checksum verified) before serving it, so a node gets the same bytes from
 * either. A node asking B meanwhile is held, never handed the old image; a fetch whose bytes do not
 * match is refused and B serves nothing stale; a peer fetch without the cluster secret is 401; an
 * image build acknowledged to the admin is in the database even when its server is killed at once.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startApiDaemon } from '../api/lib/harness.js';
import { runCli } from '../cli/node-harness.js';
import { ServeProcess, startDaemon, testConfig } from '../lib/daemon.js';
import { makeStatedir } from '../lib/statedir.js';
import { sleep, waitFor } from '../lib/sleep.js';
import { PgRegistry } from '../../src/registry/postgres/registry.js';
import { createToken } from '../../src/registry/tokens.js';
import { silentLogger } from '../../src/log/logger.js';
import { postgresMissing, startPostgres } from '../lib/postgres.js';
import { writeIn } from '../lib/statedir.js';
import { peerAuthorization } from '../../src/daemon/peer-auth.js';

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** The demo capsule, the same on both servers (their own copies: their images differ by mtimes). */
function capsule(statedir: string): void {
  writeIn(statedir, 'vnfs/demo/config', 'description: demo\ncompression: 1\n');
  writeIn(statedir, 'vnfs/demo/rootfs/etc/motd', 'version one\n');
  writeIn(statedir, 'vnfs/demo/rootfs/sbin/init', '#!/bin/sh\n', 0o755);
}

/** GETs `url`: status, the body's sha256 and its text when short. */
async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; sha: string; text: string; headers: Headers }> {
  const res = await fetch(url, { headers });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, sha: sha(body), text: body.length < 2000 ? body.toString() : '', headers: res.headers };
}

t.test('an image rebuilt on A is fetched by B, checked, and served by B; never the old one', { skip: postgresMissing() }, async (t) => {
  const pg = await startPostgres(t);
  const url = await pg.createDatabase(t, 'images');
  const a = await startApiDaemon(t, `database: "${url}"\n`, { setup: capsule });
  const b = await startDaemon(t, `database: "${url}"\n`, { setup: capsule });
  const admin = { authorization: `Bearer ${await a.token('ops', 'admin')}`, 'content-type': 'application/json' };
  const sidecar = (statedir: string) => readFileSync(join(statedir, 'vnfs/demo/image.cpio.gz.sha256'), 'utf8').split(/\s+/)[0]!;
  const imageB = `${b.base}/files/vnfs/demo/image.cpio.gz`;

  /** Builds demo's image on A through its API; the task's messages once it completed. */
  const rebuildOnA = async (vnfs = 'demo'): Promise<string[]> => {
    const res = await fetch(`${a.apiBase}/api/v1/vnfs/${vnfs}/image`, { method: 'POST', headers: admin });
    t.equal(res.status, 202, 'the image build on A is a task');
    const { id } = (await res.json()) as { id: string };
    for (let i = 0; i < 600; i++) {
      const task = (await (await fetch(`${a.apiBase}/api/v1/tasks/${id}`, { headers: admin })).json()) as { status: string; result: string; messages: Array<{ message: string }> };
      if (task.status === 'complete') {
        t.equal(task.result, 'success', 'the build task succeeded');
        return task.messages.map((m) => m.message);
      }
      await sleep(50);
    }
    throw new Error('the build task did not complete in 30 s');
  };

  const first = await rebuildOnA();
  t.match(first.join('\n'), /published to the servers of the database as the current image/, 'the task says the image was published');
  const v1 = sidecar(a.statedir);
  let t0 = performance.now();
  while (performance.now() - t0 < 5000 && (await b.daemon.registry.getImage('demo'))?.sha256 !== v1) await sleep(20);
  t.equal((await b.daemon.registry.getImage('demo'))?.sha256, v1, "the database's current image is A's");
  while (performance.now() - t0 < 10_000 && (() => { try { return sidecar(b.statedir); } catch { return ''; } })() !== v1) await sleep(20);
  t.equal(sidecar(b.statedir), v1, `B fetched it on its own, unasked (${(performance.now() - t0).toFixed(0)} ms)`);
  let got = await get(imageB);
  t.equal(got.status, 200, "B's getfile serves the image");
  t.equal(got.sha, v1, "B's bytes have A's sha256");
  t.ok(b.log.lines.some((l) => /^vnfs image fetched from 127\.0\.0\.1:\d+: \d+ bytes in [\d.]+ s/.test(String(l.msg))), 'B logs where it fetched it from, how much and how long');

  // A's rootfs changes and A rebuilds: from the acknowledgement on, B answers the new image or holds the node, never the old.
  writeFileSync(join(a.statedir, 'vnfs/demo/rootfs/etc/motd'), 'version two\n');
  writeIn(a.statedir, 'vnfs/demo/rootfs/etc/big', Buffer.alloc(8 << 20, 7)); // a fetch that takes a moment
  await rebuildOnA();
  const v2 = sidecar(a.statedir);
  t.not(v2, v1, 'the rebuilt image is another');
  t0 = performance.now();
  const answers = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
    await sleep(i * 15);
    return get(imageB);
  }));
  const ms = performance.now() - t0;
  t.same(answers.map((r) => r.status), Array(8).fill(200), 'every request to B during the fetch is answered');
  t.same(answers.map((r) => r.sha), Array(8).fill(v2), `each with the new image, none with the old (${ms.toFixed(0)} ms)`);
  const sidecarB = await get(`${b.base}/files/vnfs/demo/image.cpio.gz.sha256`);
  t.equal(sidecarB.text.split(/\s+/)[0], v2, "B's sidecar names the new image too");
  t.equal(readFileSync(join(b.statedir, 'vnfs/demo/rootfs/etc/motd'), 'utf8'), 'version one\n', "B's own rootfs is untouched");

  // B's own rootfs did not change: a later request does not rebuild over the fetched image.
  await sleep(1100);
  got = await get(imageB);
  t.equal(got.sha, v2, 'B keeps serving the fetched image (no rebuild from its own rootfs)');
  t.match(await b.daemon.registry.imageHolders('demo'), [{ sha256: v2 }, { sha256: v2 }], 'both servers are recorded as holding it');
  const status = await runCli(['--config', a.configPath, 'cluster', 'status']);
  t.equal(status.code, 0, status.err);
  t.match(status.out, new RegExp(`\\nVNFS\\s+SHA256\\s+BUILT BY\\s+PUBLISHED\\s+HELD BY\\s+OTHER IMAGE ON\\ndemo\\s+${v2.slice(0, 12)}\\s+127\\.0\\.0\\.1:${a.port}\\s+\\S+\\s+127\\.0\\.0\\.1:\\d+, 127\\.0\\.0\\.1:\\d+\\n`), 'cluster status: the current image of demo, its builder, both servers holding it');

  // A VNFS that kexecs its own kernel: its skeleton and A's capsule config travel with the image.
  a.write('vnfs/kx/config', 'description: from A\nkernel: /boot/vmlinuz\ncompression: 1\n');
  a.write('vnfs/kx/rootfs/boot/vmlinuz', 'kernel\n');
  a.write('vnfs/kx/rootfs/sbin/init', '#!/bin/sh\n', 0o755);
  b.write('vnfs/kx/config', 'description: from B\ncompression: 1\n');
  b.write('vnfs/kx/rootfs/sbin/init', '#!/bin/sh\n', 0o755);
  await rebuildOnA('kx');
  const kx = (statedir: string, file: string) => {
    try {
      return readFileSync(join(statedir, 'vnfs/kx', file), 'utf8');
    } catch {
      return '';
    }
  };
  t0 = performance.now();
  while (performance.now() - t0 < 10_000 && kx(b.statedir, 'image.cpio.gz.sha256') !== kx(a.statedir, 'image.cpio.gz.sha256')) await sleep(20);
  t.equal(kx(b.statedir, 'image.cpio.gz.sha256'), kx(a.statedir, 'image.cpio.gz.sha256'), "B fetched kx's image");
  t.match(kx(a.statedir, 'skeleton.cpio.gz.sha256'), /^[0-9a-f]{64} {2}skeleton\.cpio\.gz\n$/, 'A built a skeleton for it');
  t.equal(kx(b.statedir, 'skeleton.cpio.gz.sha256'), kx(a.statedir, 'skeleton.cpio.gz.sha256'), "B has A's skeleton");
  t.equal(kx(b.statedir, 'config'), kx(a.statedir, 'config'), "and A's capsule config");
  const skel = await get(`${b.base}/files/vnfs/kx/skeleton.cpio.gz`);
  t.equal(skel.sha, kx(a.statedir, 'skeleton.cpio.gz.sha256').split(' ')[0], "B's getfile serves A's skeleton");

  // kx deleted on A (API): the database forgets its image; A does not fetch it back from B, and B
  // (which keeps its copy, serving its own nodes) does not publish it again.
  const del = await fetch(`${a.apiBase}/api/v1/vnfs/kx?force=true`, { method: 'DELETE', headers: admin });
  t.equal(del.status, 204, 'kx deleted on A');
  t.equal(await b.daemon.registry.getImage('kx'), null, 'the database has no image of kx any more');
  await sleep(6000); // more than a poll of each server
  t.notOk(existsSync(join(a.statedir, 'vnfs/kx')), 'A did not fetch it back');
  t.equal(await b.daemon.registry.getImage('kx'), null, 'B did not publish its copy again');
  t.ok(existsSync(join(b.statedir, 'vnfs/kx/image.cpio.gz')), 'B keeps its copy');

  const scrape = (await b.daemon.metrics.scrape()).text;
  t.match(scrape, /provisiond_vnfs_image_fetches_total\{result="fetched"\} 3\b/, "B's metrics count the three fetches");
  t.match((await a.daemon.metrics.scrape()).text, /provisiond_vnfs_image_publishes_total 3\b/, "A's the three publishes");
});

t.test('a fetch whose bytes do not match is refused; B serves nothing stale; peer fetches need the secret', { skip: postgresMissing() }, async (t) => {
  const pg = await startPostgres(t);
  const url = await pg.createDatabase(t, 'imagesbad');
  const a = await startApiDaemon(t, `database: "${url}"\n`);
  // B has an older image of `bad`: stale once A publishes another.
  const b = await startDaemon(t, `database: "${url}"\n`, {
    setup: (statedir) => {
      writeIn(statedir, 'vnfs/bad/image.cpio.gz', 'the old image\n');
      writeIn(statedir, 'vnfs/bad/image.cpio.gz.sha256', `${sha('the old image\n')}  image.cpio.gz\n`);
    },
  });
  t.equal((await b.daemon.registry.getImage('bad'))?.sha256, sha('the old image\n'), "B published the image it had (the database had none)");

  // A fetches it too (it had none); then A's file is corrupted after its sidecar was written: what A offers is not what its sha256 says.
  const sidecarA = () => { try { return readFileSync(join(a.statedir, 'vnfs/bad/image.cpio.gz.sha256'), 'utf8').split(/\s+/)[0]; } catch { return ''; } };
  const t1 = performance.now();
  while (sidecarA() !== sha('the old image\n') && performance.now() - t1 < 10_000) await sleep(20);
  t.equal(sidecarA(), sha('the old image\n'), 'A fetched the image B published');
  const good = 'the good image\n';
  a.write('vnfs/bad/image.cpio.gz', 'corrupted bytes\n');
  a.write('vnfs/bad/image.cpio.gz.sha256', `${sha(good)}  image.cpio.gz\n`);
  const addrA = `127.0.0.1:${a.port}`;
  await a.daemon.registry.publishImage({ vnfs: 'bad', sha256: sha(good), bytes: good.length, builder: addrA, skeletonSha256: null, config: null });

  const res = await get(`${b.base}/files/vnfs/bad/image.cpio.gz`);
  t.equal(res.status, 503, 'B refuses the image it could not get');
  t.match(res.text, /checksum mismatch: received sha256 [0-9a-f]{64}, the database says/, 'with the reason');
  t.equal(res.headers.get('retry-after'), '10', 'and when to ask again');
  t.equal(readFileSync(join(b.statedir, 'vnfs/bad/image.cpio.gz'), 'utf8'), 'the old image\n', "B's stale file was not replaced by the bad bytes");
  t.ok(b.log.lines.some((l) => /could not be fetched: .*checksum mismatch.*retrying in/.test(String(l.msg))), 'B logs the refused fetch and retries');

  // The peer endpoint: the cluster secret's signature or an admin token, nothing else.
  const path = '/cluster/vnfs/bad/image.cpio.gz';
  const peerUrl = `${a.base}${path}`;
  let r = await get(peerUrl);
  t.equal(r.status, 401, 'a peer fetch without a credential is 401');
  t.match(r.text, /peer image fetch refused: no credential/, 'with the reason');
  r = await get(peerUrl, { authorization: peerAuthorization('0'.repeat(64), path) });
  t.equal(r.status, 401, 'one signed with another secret is 401');
  t.match(r.text, /does not match the cluster secret/);
  const secret = await a.daemon.registry.clusterSecret();
  r = await get(peerUrl, { authorization: peerAuthorization(secret, path, Date.now() - 3_600_000) });
  t.equal(r.status, 401, 'an hour-old signature is 401');
  r = await get(peerUrl, { authorization: peerAuthorization(secret, '/cluster/vnfs/other/image.cpio.gz') });
  t.equal(r.status, 401, 'a signature of another path is 401');
  r = await get(peerUrl, { authorization: `Bearer ${await a.token('look', 'viewer')}` });
  t.equal(r.status, 403, "a viewer's token is 403");
  r = await get(peerUrl, { authorization: 'Bearer nonsense' });
  t.equal(r.status, 401, 'an unknown token is 401');
  r = await get(peerUrl, { authorization: peerAuthorization(secret, path) });
  t.equal(r.status, 200, 'a server of the database gets it');
  t.equal(r.headers.get('x-provisiond-sha256'), sha(good), 'with the sha256 it stands for');
  t.equal(r.headers.get('content-length'), String('corrupted bytes\n'.length), 'and its length');
  r = await get(peerUrl, { authorization: `Bearer ${await a.token('root', 'admin')}` });
  t.equal(r.status, 200, 'an admin token gets it too');
  r = await get(`${a.base}/cluster/vnfs/bad/config`, { authorization: peerAuthorization(secret, '/cluster/vnfs/bad/config') });
  t.equal(r.status, 404, 'only image files are served');

  // Once A serves the right bytes, B's retry gets them.
  a.write('vnfs/bad/image.cpio.gz', good);
  const t0 = performance.now();
  let after = await get(`${b.base}/files/vnfs/bad/image.cpio.gz`);
  while (after.status !== 200 && performance.now() - t0 < 20_000) {
    await sleep(250);
    after = await get(`${b.base}/files/vnfs/bad/image.cpio.gz`);
  }
  t.equal(after.status, 200, `B's retry fetched it (${(performance.now() - t0).toFixed(0)} ms)`);
  t.equal(after.text, good, 'and B serves the good bytes');
});

t.test('a publish acknowledged to the admin survives kill -9 of its server', { skip: postgresMissing() }, async (t) => {
  const pg = await startPostgres(t);
  const url = await pg.createDatabase(t, 'imageskill');
  const reg = await PgRegistry.open({ url, logger: silentLogger() });
  t.teardown(() => reg.close());
  const { secret } = await createToken(reg, { name: 'ops', role: 'admin' });
  const auth = { authorization: `Bearer ${secret}` };
  const dir = makeStatedir(t, {}, { prefix: 'pvd-imgkill-', layout: true });
  capsule(dir);
  const configPath = join(dir, 'provisiond.yaml');
  writeFileSync(configPath, testConfig(dir, `database: "${url}"\n`));
  const a = await ServeProcess.start({ configPath });
  t.teardown(() => a.stop(2000));
  let api = '';
  await waitFor(() => (api = a.lines.map((l) => /^listening: api (\S+)$/.exec(String(l.msg))?.[1]).find(Boolean) ?? '') !== '', 10_000, 50);
  const res = await fetch(`${api}/api/v1/vnfs/demo/image`, { method: 'POST', headers: auth });
  const { id } = (await res.json()) as { id: string };
  let task = await reg.getTask(id);
  // Polled in the database, as fast as it goes: kill -9 the moment the task is acknowledged complete.
  while (task?.status !== 'complete') {
    await sleep(5);
    task = await reg.getTask(id);
  }
  a.kill('SIGKILL');
  await a.exited;
  t.equal(task.result, 'success', 'the build task was acknowledged');
  const built = readFileSync(join(dir, 'vnfs/demo/image.cpio.gz.sha256'), 'utf8').split(/\s+/)[0];
  const rec = await reg.getImage('demo');
  t.equal(rec?.sha256, built, 'after kill -9 the database has the image as current');
  t.equal(rec?.config, 'description: demo\ncompression: 1\n', 'with the capsule config');

  // While A is down its rootfs changes and the CLI rebuilds the image: A publishes it when it starts.
  writeFileSync(join(dir, 'vnfs/demo/rootfs/etc/motd'), 'built while the daemon was down\n');
  const cli = await runCli(['--config', configPath, 'vnfs', 'image', 'demo']);
  t.equal(cli.code, 0, cli.err);
  const offline = readFileSync(join(dir, 'vnfs/demo/image.cpio.gz.sha256'), 'utf8').split(/\s+/)[0];
  t.not(offline, built, 'a new image built by the CLI');
  t.equal((await reg.getImage('demo'))?.sha256, built, 'not published by the CLI itself');
  const again = await ServeProcess.start({ configPath });
  t.teardown(() => again.stop(2000));
  // Ready at its `listening: http` line; the images are reconciled right after.
  await waitFor(async () => (await reg.getImage('demo'))?.sha256 === offline, 10_000, 50);
  t.equal((await reg.getImage('demo'))?.sha256, offline, 'A published it as it started');
});
