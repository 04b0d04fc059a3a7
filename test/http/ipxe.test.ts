import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { startDaemon, text } from '../lib/daemon.js';

const MAC = '52:54:00:99:00:01';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('iPXE scripts: registered, auto-registered, boot local, own VNFS kernel, chain by fixed name', async (t) => {
  const h = await startDaemon(t);
  const unknown = await text(`${h.base}/boot/${MAC}.ipxe`);
  t.match(unknown.body, /^#!ipxe\n/);
  t.match(unknown.body, new RegExp(`kernel ${h.base}/boot/vmlinuz initrd=initramfs.img provisiond=${h.base} provisiond.nodeid=${MAC.toUpperCase()} provisiond.debug=0 console=tty0 console=ttyS0,115200n8 quiet \\|\\| goto failed`));
  t.ok(await h.daemon.registry.getNodeByNodeid(MAC), 'an unknown MAC is auto-registered by its iPXE request');

  await h.daemon.registry.addNode({ name: 'disk01', nodeid: '52:54:00:99:00:02', boot: 'local' });
  const local = await text(`${h.base}/boot/52-54-00-99-00-02.ipxe`);
  t.match(local.body, /sanboot --drive 0x80 \|\| exit/);
  t.notMatch(local.body, /kernel /);

  h.write('vnfs/rocky9/vmlinuz', 'own kernel');
  h.write('vnfs/rocky9/initramfs.img', 'own initramfs');
  await h.daemon.registry.addNode({ name: 'gpu01', nodeid: '52:54:00:99:00:03', vnfs: 'rocky9', debug: 2, attrs: { iface: 'ens1f0', 'kernel.args': 'nomodeset' } });
  const own = await text(`${h.base}/boot/52:54:00:99:00:03.ipxe`);
  t.match(own.body, new RegExp(`kernel ${h.base}/boot/vnfs/rocky9/vmlinuz initrd=initramfs.img .*provisiond.debug=2 provisiond.iface=ens1f0 console=tty0 console=ttyS0,115200n8 nomodeset`));
  t.match(own.body, new RegExp(`initrd ${h.base}/boot/vnfs/rocky9/initramfs.img`));
  t.equal((await text(`${h.base}/boot/vnfs/rocky9/vmlinuz`)).body, 'own kernel');
  t.equal((await text(`${h.base}/boot/vnfs/rocky9/rootfs.img`)).status, 404, 'only the stage-1 files of a VNFS are boot files');

  const chain = await text(`${h.base}/boot/boot.ipxe`);
  t.match(chain.body, new RegExp(`chain ${h.base}/boot/\\$\\{mac\\}.ipxe`), 'an unknown address gets a chain to the per-MAC script');
});

t.test('boot files: stage-1 from the TFTP root, iPXE loaders from the ipxe package', async (t) => {
  const h = await startDaemon(t);
  const kernel = randomBytes(300_000);
  h.write('tftp/vmlinuz', kernel);
  const got = await fetch(`${h.base}/boot/vmlinuz`);
  t.equal(got.status, 200);
  t.equal(sha256(Buffer.from(await got.arrayBuffer())), sha256(kernel));
  t.equal((await text(`${h.base}/boot/nope.img`)).status, 404);
  t.equal((await text(`${h.base}/boot/..%2fprovisiond.yaml`)).status, 403);
  const efi = '/usr/lib/ipxe/ipxe.efi';
  if (!existsSync(efi)) {
    if (process.env.CI === 'true') t.fail('Debian package ipxe is missing: UEFI HTTP boot loaders cannot be served');
    else t.skip('Debian package ipxe not installed (apt-get install ipxe): packaged loaders not checked', () => {});
    return;
  }
  const loader = await fetch(`${h.base}/boot/ipxe.efi`);
  t.equal(loader.status, 200, 'UEFI HTTP boot can fetch iPXE without the admin copying it');
  t.equal(sha256(Buffer.from(await loader.arrayBuffer())), sha256(readFileSync(efi)));
});

t.test('security.verifySource: scripts only go to the address the node holds', async (t) => {
  const h = await startDaemon(t, 'security:\n  verifySource: true\n');
  h.write('nodescripts/init/all/10-secret', '#!/bin/sh\necho "echo token-for-$NODENAME"\n', 0o755);
  await h.daemon.registry.addNode({ name: 'far01', nodeid: '52:54:00:99:00:10', ipaddr: '10.9.9.9' });
  await h.daemon.registry.addNode({ name: 'near01', nodeid: '52:54:00:99:00:11', ipaddr: '127.0.0.1' });
  const far = await text(`${h.base}/nodescripts/init?nodeid=52:54:00:99:00:10`);
  t.equal(far.status, 403);
  t.match(far.body, /far01 holds 10\.9\.9\.9, the request came from 127\.0\.0\.1/);
  t.notMatch(far.body, /token/);
  const near = await text(`${h.base}/nodescripts/init?nodeid=52:54:00:99:00:11`);
  t.equal(near.status, 200);
  t.match(near.body, /echo token-for-near01/);
});
