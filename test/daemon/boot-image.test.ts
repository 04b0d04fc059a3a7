/**
 * "Would a reboot change this node?": the node reports the sha256 of the VNFS image it booted
 * (10-vnfs, `image VNFS SHA256`, with the stage-1 client's busybox wget); once the image is rebuilt
 * on the master, `node status` says RELOAD with both hashes and `node list --json` carries them.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { bearer, initCredential, startDaemon, text } from '../lib/daemon.js';
import { sleep } from '../lib/sleep.js';

const run = promisify(execFile);
const MAC = '52:54:00:aa:05:01';

t.test('a rebuilt image turns a ready node to RELOAD, with the booted and current hashes', async (t) => {
  const h = await startDaemon(t);
  h.write('vnfs/demo/config', 'description: demo\ncompression: 1\n');
  h.write('vnfs/demo/rootfs/etc/motd', 'version one\n');
  h.write('vnfs/demo/rootfs/sbin/init', '#!/bin/sh\n', 0o755);
  h.write('nodescripts/ready/all/10-ok', '#!/bin/sh\necho true\n', 0o755);
  await h.daemon.registry.addNode({ name: 'n0501', nodeid: MAC, vnfs: 'demo' });
  const cli = async (...args: string[]) => (await run(process.execPath, ['bin/provisiond.js', '--config', h.configPath, ...args])).stdout;
  const sidecar = () => readFileSync(join(h.statedir, 'vnfs/demo/image.cpio.gz.sha256'), 'utf8').split(/\s+/)[0]!;

  await cli('vnfs', 'image', 'demo');
  const first = sidecar();
  t.match(first, /^[0-9a-f]{64}$/, 'the image has its sha256');

  // The node boots: its init script hands it a credential, 10-vnfs reports the image it checked,
  // then the ready agent checks in, each with the credential.
  const cred = await initCredential(h.base, MAC);
  const auth = `Authorization: Bearer ${cred}`;
  await run('busybox', ['wget', '-q', '-O', '/dev/null', '--header', auth, `${h.base}/nodes/${MAC}/events?stage=image&msg=demo%20${first}`]);
  t.equal((await text(`${h.base}/nodescripts/ready?nodeid=${MAC}`, bearer(cred))).status, 200);
  await h.daemon.registry.flush();

  const status = async () => JSON.parse(await cli('node', 'status', 'n0501', '--json')) as Array<{ verdict: string }>;
  const list = async () => JSON.parse(await cli('node', 'list', 'n0501', '--json')) as Array<{ bootVnfs: string; bootImage: string; currentImage: string }>;
  t.equal((await status())[0]!.verdict, 'READY', 'ready, on the image it booted');
  t.match((await list())[0], { bootVnfs: 'demo', bootImage: first, currentImage: first }, 'node list --json: the booted image is the current one');

  // The admin changes the VNFS and rebuilds its image: the running node is now behind.
  h.write('vnfs/demo/rootfs/etc/motd', 'version two\n');
  await sleep(10);
  await cli('vnfs', 'image', 'demo');
  const second = sidecar();
  t.not(second, first, 'the rebuilt image has another sha256');
  t.equal((await status())[0]!.verdict, `RELOAD (image changed since boot (booted ${first.slice(0, 12)}.., current ${second.slice(0, 12)}..))`, 'node status: RELOAD, with both hashes');
  t.match((await list())[0], { bootImage: first, currentImage: second }, 'node list --json carries both hashes');

  // It reboots into the new image: READY again. A malformed report changes nothing.
  await run('busybox', ['wget', '-q', '-O', '/dev/null', '--header', auth, `${h.base}/nodes/${MAC}/events?stage=image&msg=demo%20not-a-hash`]);
  await h.daemon.registry.flush();
  t.match((await list())[0], { bootImage: first }, 'a report without a sha256 is kept in the timeline only');
  await run('busybox', ['wget', '-q', '-O', '/dev/null', '--header', auth, `${h.base}/nodes/${MAC}/events?stage=image&msg=demo%20${second}`]);
  await text(`${h.base}/nodescripts/ready?nodeid=${MAC}`, bearer(cred));
  await h.daemon.registry.flush();
  t.equal((await status())[0]!.verdict, 'READY', 'after the reboot it runs the current image');

  // What it booted is in the registry, not only in memory: it survives the daemon.
  await h.daemon.close();
  t.match((await list())[0], { bootVnfs: 'demo', bootImage: second }, 'kept across a restart');
});
