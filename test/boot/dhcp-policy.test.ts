import t from 'tap';
import { decideDhcp } from '../../src/boot/dhcp-policy.js';
import { parseConfig } from '../../src/config/load.js';
import type { ResolvedNode } from '../../src/registry/types.js';

const config = parseConfig('master: 10.0.0.1\n');
const node = (over: Partial<ResolvedNode> = {}): ResolvedNode => ({
  name: 'n0001', nodeid: '52:54:00:00:00:01', group: 'cluster', vnfs: 'demo', enabled: true, debug: 0, ipaddr: '10.0.0.21', desc: null, boot: 'pxe',
  state: null, lastcontact: null, lastaddr: null, bootVnfs: null, bootImage: null, attrs: {}, sources: {}, ...over,
});
const req = { hwaddr: '52:54:00:00:00:01', arch: null, userClasses: [] as string[], vendorClass: 'provisiond', proxy: false };

t.test("provisiond's stage-1 (udhcpc -V provisiond) gets its address and name, no boot loader", async (t) => {
  const d = decideDhcp(req, node(), config);
  t.ok(d.answer, 'answered');
  if (!d.answer) return;
  t.equal(d.address, '10.0.0.21', 'the node keeps its fixed address');
  t.equal(d.hostname, 'n0001', 'and comes up named');
  t.equal(d.boot, null, 'no boot file: the node is past PXE, its timeline must not read as a second PXE boot');
  t.match(d.why, /stage-1/);
});

t.test('an unknown stage-1 client still gets a dynamic address; a plain client without arch still gets the BIOS loader', async (t) => {
  const unknown = decideDhcp(req, null, config);
  t.ok(unknown.answer && unknown.address === null && unknown.boot === null, 'dynamic address, no loader');
  const plain = decideDhcp({ ...req, vendorClass: null }, node(), config);
  t.equal(plain.answer && plain.boot?.file, 'undionly.kpxe', 'legacy PXE without option 93 is BIOS');
});

t.test('a disabled node is still refused before the stage-1 rule applies', async (t) => {
  const d = decideDhcp(req, node({ enabled: false }), parseConfig('master: 10.0.0.1\ndhcp:\n  localBoot: ignore\n'));
  t.equal(d.answer, false);
});
