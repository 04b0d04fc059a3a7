/**
 * Image propagation (issue 19): two servers on one PostgreSQL in the test namespace. B is the
 * cluster's server (DHCP, TFTP, HTTP); A has its own statedir and HTTP port. The demo VNFS is
 * rebuilt on A (`vnfs image` against A's config, after a file of A's rootfs changed); a QEMU node
 * booting from B gets A's new image: the sha256 it reports (10-vnfs, `image demo SHA`) is A's, and
 * the file changed on A is in its root.
 */
import t from 'tap';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../lib/cleanup.js';
import { ServeProcess } from '../lib/daemon.js';
import { gate } from '../lib/gate.js';
import { postgresMissing, startPostgres } from '../lib/postgres.js';
import { sleep } from '../lib/sleep.js';
import { Cluster } from './lib/cluster.js';
import { TestNetwork } from './lib/netns.js';
import { e2eWhyNot } from './lib/prereqs.js';
import { Vm } from './lib/vm.js';

const BOOT_TIMEOUT = 330_000;
const MAC = '52:54:00:99:19:01';

if (gate(t, e2eWhyNot() ?? (postgresMissing() || null))) {
  t.test('a QEMU node booting from B gets the image rebuilt on A', { timeout: 900_000 }, async (t) => {
    const dir = tempDir('pvd-e2e-images-');
    const pg = await startPostgres(t);
    const database = await pg.createDatabase(t, 'images');
    const net = await TestNetwork.create({ dir });
    const cluster = new Cluster({ net, statedir: join(dir, 'b'), readyInterval: 5, database, log: (m) => t.comment(m) });
    let a: ServeProcess | null = null;
    const vm = new Vm({ name: 'img1', firmware: 'bios', mac: MAC, net, dir });
    t.teardown(async () => {
      await vm.stop();
      await a?.stop();
      await cluster.stop();
      await net.destroy();
      if (!process.env.PVD_E2E_KEEP) rmSync(dir, { recursive: true, force: true });
      else t.comment(`kept ${dir}`);
    });

    await cluster.prepare();
    await cluster.vmGroups(['cluster']);
    // The node prints the file A's rebuild adds, from the root it booted.
    mkdirSync(join(cluster.statedir, 'nodescripts/ready/group/cluster'), { recursive: true });
    writeFileSync(join(cluster.statedir, 'nodescripts/ready/group/cluster/61-built-on'), '#!/bin/sh\necho "built-on: $(cat /etc/built-on 2>&1)" > /dev/console\n');
    await cluster.start();
    const sidecar = (statedir: string) => readFileSync(join(statedir, 'vnfs/demo/image.cpio.gz.sha256'), 'utf8').split(/\s+/)[0]!;
    const old = sidecar(cluster.statedir);

    // Server A: the same VNFS's rootfs (its own copy), HTTP on another port, nothing else.
    const sa = join(dir, 'a');
    mkdirSync(join(sa, 'vnfs'), { recursive: true });
    cpSync(join(cluster.statedir, 'nodescripts'), join(sa, 'nodescripts'), { recursive: true });
    cpSync(join(cluster.statedir, 'vnfs/demo/rootfs'), join(sa, 'vnfs/demo/rootfs'), { recursive: true, verbatimSymlinks: true });
    cpSync(join(cluster.statedir, 'vnfs/demo/config'), join(sa, 'vnfs/demo/config'));
    const configA = join(sa, 'provisiond.yaml');
    writeFileSync(
      configA,
      [`statedir: ${sa}`, `master: ${net.master}`, `database: ${JSON.stringify(database)}`, 'log: { level: debug, format: json }', 'http: { listen: 0.0.0.0, port: 8081 }', 'tftp: { enabled: false }', 'dhcp: { enabled: false }', 'api: { enabled: false }', ''].join('\n'),
    );
    a = await ServeProcess.start({ configPath: configA, netns: { lab: net.lab, ns: net.name }, env: { ...process.env, NODE_ENV: 'production' }, logFile: join(sa, 'provisiond.log') });

    // A changes a file of its rootfs and rebuilds the image (the CLI, on A's master shell).
    writeFileSync(join(sa, 'vnfs/demo/rootfs/etc/built-on'), 'server A\n');
    await new Cluster({ net, statedir: sa }).cli(['vnfs', 'image', 'demo'], 600_000);
    const fresh = sidecar(sa);
    t.not(fresh, old, "A's rebuilt image is another than B's");
    const t0 = Date.now();
    let onB = '';
    while (Date.now() - t0 < 60_000) {
      try {
        onB = sidecar(cluster.statedir);
      } catch {
        onB = '';
      }
      if (onB === fresh) break;
      await sleep(200);
    }
    t.equal(onB, fresh, `B fetched A's image (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

    await cluster.cli(['node', 'add', MAC, 'img1', '--vnfs', 'demo']);
    await vm.start();
    // The whole line: the console may hold only its start when the first bytes arrive.
    const secs = await vm.waitForSerial(/built-on: [^\r\n]*[\r\n]/, BOOT_TIMEOUT);
    t.match(vm.serial, /built-on: server A/, `the node booted from B runs A's root (${secs.toFixed(0)} s after power-on)`);
    const events = await cluster.timelineEvents('img1');
    const reported = events.find((e) => e.source === 'node' && e.stage === 'image');
    t.equal(reported?.msg, `demo ${fresh}`, "the image the node reports is A's rebuilt one");
    t.ok(events.some((e) => e.source === 'http' && /^http image\.cpio\.gz$/.test(e.stage) && e.ok), 'B served it over getfile');
  });
}
