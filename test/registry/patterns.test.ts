/** Node-name patterns as admins type them: ranges, globs, and the n#### auto-registration pattern. */
import t from 'tap';
import { compareNames, expandRanges, formatName, matchPatterns, nextFreeName, parseNamePattern } from '../../src/util/patterns.js';
import { parseMac } from '../../src/util/mac.js';

t.test('bracket ranges expand as in Perceus and pdsh', async (t) => {
  const table: Array<[string, string[]]> = [
    ['n0001', ['n0001']],
    ['n00[01-04]', ['n0001', 'n0002', 'n0003', 'n0004']],
    ['n[1-3,7]', ['n1', 'n2', 'n3', 'n7']],
    ['n[8-11]', ['n8', 'n9', 'n10', 'n11']],
    ['n[08-11]', ['n08', 'n09', 'n10', 'n11']],
    ['n[1-010]', ['n001', 'n002', 'n003', 'n004', 'n005', 'n006', 'n007', 'n008', 'n009', 'n010']],
    ['rack[1-2]-n[01-02]', ['rack1-n01', 'rack1-n02', 'rack2-n01', 'rack2-n02']],
    ['n[5]x', ['n5x']],
  ];
  for (const [pattern, names] of table) t.same(expandRanges(pattern), names, pattern);
  expandRanges('n00[01-16]').forEach((n, i) => t.equal(n, `n00${String(i + 1).padStart(2, '0')}`));
  t.equal(expandRanges('n00[01-16]').length, 16);
});

t.test('bad ranges are refused with the reason', async (t) => {
  const table: Array<[string, RegExp]> = [
    ['n[1-3', /"\[" without "\]"/],
    ['n1-3]', /"\]" without "\["/],
    ['n[]', /empty range/],
    ['n[a-c]', /"a-c" is not a number/],
    ['n[9-1]', /range 9-1 goes backwards/],
    ['n[1-9999999]', /more than 1000000/],
  ];
  for (const [pattern, re] of table) t.throws(() => expandRanges(pattern), { name: 'UsageError', message: re }, pattern);
});

t.test('patterns match existing names; a pattern that matches nothing is reported', async (t) => {
  const names = ['n0001', 'n0002', 'n0010', 'n0100', 'gpu01', 'rack1-n01', 'rack2-n01'];
  t.same(matchPatterns(['n00*'], names).matched, ['n0001', 'n0002', 'n0010']);
  t.same(matchPatterns(['n000?'], names).matched, ['n0001', 'n0002']);
  t.same(matchPatterns(['n00[01-02]', 'gpu01', 'n0001'], names).matched, ['n0001', 'n0002', 'gpu01'], 'each once, in list order');
  t.same(matchPatterns(['rack[1-2]-*'], names).matched, ['rack1-n01', 'rack2-n01'], 'ranges and globs together');
  t.same(matchPatterns(['n0001', 'nope*', 'n9999'], names).unmatched, ['nope*', 'n9999']);
  t.same(matchPatterns(['n00[01-05]'], names), { matched: ['n0001', 'n0002'], unmatched: [] }, 'a range matching some names is fine');
  t.same(matchPatterns(['a.b'], ['a.b', 'axb']).matched, ['a.b'], 'a dot is literal');
  const macs = ['52:54:00:AA:00:01', '52:54:00:AA:00:02', '52:54:00:BB:00:01'];
  const norm = (s: string) => parseMac(s) ?? s.toUpperCase().replaceAll('-', ':');
  t.same(matchPatterns(['52-54-00-aa-00-01'], macs, norm).matched, ['52:54:00:AA:00:01'], 'hardware addresses in any notation');
  t.same(matchPatterns(['52:54:00:aa:*'], macs, norm).matched, ['52:54:00:AA:00:01', '52:54:00:AA:00:02']);
});

t.test('names sort as an admin reads them', async (t) => {
  t.same(['n10', 'n2', 'n1', 'rack2-n1', 'rack10-n1', 'rack1-n2'].sort(compareNames), ['n1', 'n2', 'n10', 'rack1-n2', 'rack2-n1', 'rack10-n1']);
});

t.test('the n#### pattern: prefix, zero-padded number, suffix; next free name', async (t) => {
  t.same(parseNamePattern('n####'), { prefix: 'n', width: 4, suffix: '' });
  t.same(parseNamePattern('rack1-##.ib'), { prefix: 'rack1-', width: 2, suffix: '.ib' });
  t.throws(() => parseNamePattern('node'), /needs one run of # digits/);
  t.throws(() => parseNamePattern('n##x##'), /needs one run of # digits/);
  t.equal(formatName(parseNamePattern('n####'), 7), 'n0007');
  t.equal(formatName(parseNamePattern('c###-ib'), 42), 'c042-ib');
  const taken = new Set(['n0000', 'n0001', 'n0003']);
  t.equal(nextFreeName('n####', 0, null, (n) => taken.has(n)), 'n0002', 'first gap');
  t.equal(nextFreeName('n####', 5, null, (n) => taken.has(n)), 'n0005', 'from firstNode');
  t.equal(nextFreeName('n#', 0, null, () => false), 'n0');
  t.equal(nextFreeName('n#', 0, null, (n) => n !== 'n9'), 'n9', 'up to the width maximum');
  t.equal(nextFreeName('n#', 0, null, () => true), null, 'exhausted at the width');
  t.equal(nextFreeName('n####', 1, 3, (n) => ['n0001', 'n0002', 'n0003'].includes(n)), null, 'exhausted at totalNodes');
});

t.test('the name order is total and consistent', async (t) => {
  const names = ['n10', 'n9', 'n09', 'n1', 'n01', 'a', 'A', 'n', 'n1a', 'n1b', 'n2a', 'rack10-n1', 'rack2-n10', 'rack2-n9', 'x007y3', 'x7y10'];
  const sorted = names.slice().sort(compareNames);
  t.same(sorted, ['A', 'a', 'n', 'n1', 'n01', 'n1a', 'n1b', 'n2a', 'n9', 'n09', 'n10', 'rack2-n9', 'rack2-n10', 'rack10-n1', 'x007y3', 'x7y10']);
  for (const a of names) for (const b of names) t.equal(Math.sign(compareNames(a, b)), -Math.sign(compareNames(b, a)) || 0, `${a} ${b} antisymmetric`);
});
