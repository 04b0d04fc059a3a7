import t from 'tap';
import { canonicalMac, macFromBytes, parseMac } from '../../src/util/mac.js';
import { assertPlainName, isPlainName, isState } from '../../src/util/names.js';

t.test('hardware addresses are accepted in every usual notation', async (t) => {
  for (const input of ['aa:bb:cc:dd:ee:0f', 'AA-BB-CC-DD-EE-0F', 'aabb.ccdd.ee0f', 'aabbccddee0f', ' aa:bb:cc:dd:ee:f ']) {
    t.equal(parseMac(input), 'AA:BB:CC:DD:EE:0F', input);
  }
  t.equal(parseMac('80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:0a:6b:e1')?.length, 59, 'IPoIB 20-octet address');
  for (const bad of ['', 'zz:bb:cc:dd:ee:ff', 'aa:bb:cc', '../etc/passwd', 'aa:bb:cc:dd:ee:ff;rm']) t.equal(parseMac(bad), null, bad);
  t.throws(() => canonicalMac('nope'), TypeError);
  t.equal(macFromBytes(Buffer.from([0, 1, 0xab, 2, 3, 4])), '00:01:AB:02:03:04');
});

t.test('names that become folders on the master cannot escape them', async (t) => {
  for (const ok of ['n0001', 'compute', 'centos-7.9', 'rack_1']) t.ok(isPlainName(ok), ok);
  for (const bad of ['', '..', 'a/b', '../x', '.hidden', '-rf', 'a..b', 'a b']) t.notOk(isPlainName(bad), bad);
  t.throws(() => assertPlainName('../x', 'node name'), /invalid node name "..\/x"/);
  t.ok(isState('init'));
  t.notOk(isState('in it'));
});
