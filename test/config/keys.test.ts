/**
 * Every configuration key is documented where admins look: in the "## Keys" table of docs/configuration.md
 * (with its real default) and in the shipped etc/provisiond.yaml. And each kind of mistake in a file
 * is refused with the file, the key path and the reason.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { parse, parseDocument } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/util/errors.js';

/** The leaves of the config: `dhcp.range` -> its default (arrays are leaves). */
function leaves(o: Record<string, unknown>, prefix = ''): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(o)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) for (const [kk, vv] of leaves(v as Record<string, unknown>, key)) out.set(kk, vv);
    else out.set(key, v);
  }
  return out;
}

const { source: _s, statedir: _d, ...rest } = parseConfig('', '<defaults>', '/srv');
const defaults = leaves({ ...rest, statedir: '.' });

t.test('docs/configuration.md lists every key with its default, and no key that does not exist', async (t) => {
  const doc = readFileSync('docs/configuration.md', 'utf8');
  const section = doc.split(/^## Keys$/m)[1]?.split(/^## /m)[0] ?? '';
  t.ok(section, 'docs/configuration.md has a "## Keys" section');
  const table = new Map<string, string>();
  for (const m of section.matchAll(/^\| `([^`]+)` \| `([^`]*)` \| (.+) \|$/gm)) table.set(m[1]!, m[2]!);
  for (const [key, value] of defaults) {
    t.ok(table.has(key), `${key} is in the table`);
    if (table.has(key)) t.same(parse(table.get(key)!), value, `${key}: the default shown is the real one`);
  }
  for (const key of table.keys()) t.ok(defaults.has(key), `${key} (in docs/configuration.md) is a real key`);
});

t.test('the shipped etc/provisiond.yaml spells out every key', async (t) => {
  const doc = parseDocument(readFileSync('etc/provisiond.yaml', 'utf8'));
  const shipped = leaves(doc.toJS() as Record<string, unknown>);
  for (const key of defaults.keys()) t.ok(shipped.has(key), `${key} is in etc/provisiond.yaml`);
});

t.test('each kind of mistake is refused with file, key path and reason', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['defaults:\n  nodeName: node\n', /: defaults\.nodeName: must contain # digits, e\.g\. n####$/],
    ['defaults:\n  firstNode: -1\n', /: defaults\.firstNode: /],
    ['defaults:\n  totalNodes: 0\n', /: defaults\.totalNodes: /],
    ['defaults:\n  autoRegister: sometimes\n', /: defaults\.autoRegister: expected boolean/],
    ['database: mysql://db/provisiond\n', /: database: must be sqlite:PATH or postgres:\/\/\.\.\.$/],
    ['master: provisiond.example\n', /: master: not an IPv4 address$/],
    ['http:\n  port: 70000\n', /: http\.port: /],
    ['dhcp:\n  mode: relay\n', /: dhcp\.mode: /],
    ['dhcp:\n  dns: [10.0.0.1, dns.example]\n', /: dhcp\.dns\[1\]: not an IPv4 address$/],
    ['dhcp:\n  subnets:\n    - { network: 10.1.0.0, range: [10.1.0.10, 10.1.0.20] }\n', /: dhcp\.subnets\[0\]\.network: not an IPv4 network in CIDR form$/],
    ['dhcp:\n  subnets:\n    - { network: 10.1.0.0/24, range: [10.1.0.10, 10.1.0.20], colour: red }\n', /: dhcp\.subnets\[0\]\.colour: unknown key$/],
    ['node:\n  timeout: 0\n', /: node\.timeout: /],
    ['log:\n  level: loud\n', /: log\.level: /],
    ['nodescripts:\n  concurrency: 1.5\n', /: nodescripts\.concurrency: /],
    ['metrics:\n  enabled: true\n  listen: 10.0.0.1\n', /: metrics\.listen: 10\.0\.0\.1 is not a loopback address: the scraper's token would cross the network in clear; set metrics\.tls \(cert and key\), or metrics\.insecure: true$/],
    ['metrics:\n  port: -1\n', /: metrics\.port: /],
  ];
  for (const [text, re] of cases) {
    let err: unknown;
    try {
      parseConfig(text, '/etc/provisiond/provisiond.yaml');
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof ConfigError, `${JSON.stringify(text)} is refused`);
    t.match((err as Error)?.message, new RegExp(`^/etc/provisiond/provisiond\\.yaml${re.source}`));
  }
});

t.test('a partial file keeps the defaults of everything it does not set', async (t) => {
  const c = parseConfig('dhcp:\n  enabled: true\ndefaults:\n  nodeName: c###\n', 'x.yaml', '/srv');
  t.equal(c.dhcp.enabled, true);
  t.equal(c.dhcp.leaseTime, 3600, 'sibling keep their defaults');
  t.equal(c.defaults.nodeName, 'c###');
  t.equal(c.defaults.group, 'cluster');
  t.equal(parseConfig('statedir: /var/lib/provisiond\n', 'x', '/srv').statedir, '/var/lib/provisiond', 'an absolute statedir is kept');
  t.equal(parseConfig('statedir: state\n', 'x', '/srv').statedir, '/srv/state', 'a relative one is taken from the working directory');
});
