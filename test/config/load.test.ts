import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findConfig, loadConfig, parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/util/errors.js';

t.test('embedded defaults are the documented ones', async (t) => {
  const c = parseConfig('', '<defaults>', '/srv');
  t.equal(c.statedir, '/srv');
  t.equal(c.http.port, 8080);
  t.same(c.dhcp.range, ['10.0.0.100', '10.0.0.199']);
  t.equal(c.defaults.nodeName, 'n####');
  t.equal(c.nodescripts.onError, 'continue');
  t.ok(Object.isFrozen(c.http), 'config is frozen');
});

t.test('the shipped etc/provisiond.yaml equals the embedded defaults', async (t) => {
  const shipped = loadConfig('etc/provisiond.yaml');
  const { source: _a, ...a } = shipped;
  const { source: _b, ...b } = parseConfig('');
  t.same(a, b);
});

t.test('a bad config is refused with file, key path and reason', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['dhcp:\n  range: [10.0.0.1, nope]\n', /^etc\/provisiond\.yaml: dhcp\.range\[1\]: not an IPv4 address$/],
    ['htpp:\n  port: 80\n', /^etc\/provisiond\.yaml: htpp: unknown key$/],
    ['http:\n  port: eighty\n', /^etc\/provisiond\.yaml: http\.port: expected number/],
    ['nodescripts:\n  onError: explode\n', /^etc\/provisiond\.yaml: nodescripts\.onError: /],
    ['statedir: [\n', /^etc\/provisiond\.yaml: line \d+: /],
    ['- a\n- b\n', /top level must be a mapping/],
  ];
  for (const [text, re] of cases) {
    let err: unknown;
    try {
      parseConfig(text, 'etc/provisiond.yaml');
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof ConfigError, `${JSON.stringify(text)} is refused`);
    t.match((err as Error).message, re);
  }
});

t.test('the config is found by --config, then $PROVISIOND_CONFIG, then ./etc', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'provisiond-cfg-'));
  t.teardown(() => {});
  writeFileSync(join(dir, 'a.yaml'), 'master: 10.9.9.9\n');
  t.equal(findConfig('a.yaml', {}, dir), join(dir, 'a.yaml'));
  t.equal(findConfig(undefined, { PROVISIOND_CONFIG: 'b.yaml' }, dir), join(dir, 'b.yaml'));
  t.equal(loadConfig(undefined, { PROVISIOND_CONFIG: join(dir, 'a.yaml') }, dir).master, '10.9.9.9');
  t.throws(() => loadConfig(join(dir, 'missing.yaml')), /missing\.yaml: cannot read: ENOENT/);
});
