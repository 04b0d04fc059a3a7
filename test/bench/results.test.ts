import { readFileSync } from 'node:fs';
import t from 'tap';
import { BenchResults, formatSection, formatTable, replaceSection, type Section, type Stamp } from '../../bench/lib/results.js';

const stamp: Stamp = {
  started: new Date('2026-12-05T13:40:12Z'),
  ended: new Date('2026-12-05T13:52:40Z'),
  machine: { cores: 2, memoryBytes: 24 * 2 ** 30, kernel: '6.1.0-28-amd64', loadStart: [0.5, 0.71, 1], loadEnd: [3.25, 2, 1.5] },
  command: 'node --import tsx bench/vnfs.ts',
  nonDefault: null,
};
const section: Section = {
  name: 'vnfs',
  title: 'Building the image of a 500 MiB tree; ratio = peer time / our time.',
  columns: [{ title: 'measure' }, { title: 'provisiond', align: 'right' }, { title: 'find | cpio | gzip', align: 'right' }, { title: 'ratio', align: 'right' }],
  rows: [['time, best of 2', '10.10 s', '20.20 s', '**2.00x**']],
  notes: ['Memory is flat.'],
};

const file = [
  '# Benchmark results',
  '',
  'Header paragraph, written by hand.',
  '',
  '## dhcp',
  '',
  'dhcp figures  ',
  '',
  '| a | b |',
  '| --- | ---: |',
  '| x | 1 |',
  '',
  '',
  '## vnfs',
  '',
  'No run recorded yet.',
  '',
  '## registry',
  '',
  'registry figures, no blank line at the end of the file',
].join('\n');

t.test('a section says when, on what machine, how loaded, with which command, then its table', async (t) => {
  const text = formatSection(section, stamp);
  t.equal(
    text,
    [
      '## vnfs',
      '',
      '5 December 2026, 13:40 UTC (12 min); 2 cores, 24.0 GiB, Linux 6.1.0-28-amd64; load average (1, 5, 15 min) 0.50 0.71 1.00 at the start, 3.25 2.00 1.50 at the end. Command: `node --import tsx bench/vnfs.ts`.',
      '',
      'Building the image of a 500 MiB tree; ratio = peer time / our time.',
      '',
      '| measure | provisiond | find \\| cpio \\| gzip | ratio |',
      '| --- | ---: | ---: | ---: |',
      '| time, best of 2 | 10.10 s | 20.20 s | **2.00x** |',
      '',
      'Memory is flat.',
      '',
    ].join('\n'),
  );
});

t.test('a run with other than the default settings says so in its section', async (t) => {
  const text = formatSection(section, { ...stamp, nonDefault: 'tree of 20 MiB (default 500)' });
  t.match(text, /\*\*Not the bench's default settings\*\* \(tree of 20 MiB \(default 500\)\)/);
  t.notMatch(formatSection(section, stamp), /default settings/);
});

t.test('a table row of the wrong width is refused; empty cells show a dash', async (t) => {
  t.throws(() => formatTable([{ title: 'a' }, { title: 'b' }], [['only one']]), TypeError);
  t.equal(formatTable([{ title: 'a' }, { title: 'b' }], [['x', '']]), '| a | b |\n| --- | --- |\n| x | - |');
  t.equal(formatTable([{ title: 'a' }], [['already \\| escaped']]), '| a |\n| --- |\n| already \\| escaped |');
});

t.test('replacing a section keeps the header and the other sections byte for byte', async (t) => {
  const text = formatSection(section, stamp);
  const out = replaceSection(file, 'vnfs', text);
  const [head, rest] = [file.slice(0, file.indexOf('## vnfs')), file.slice(file.indexOf('## registry'))];
  t.ok(out.startsWith(head), 'header and dhcp section, trailing spaces and blank lines included');
  t.ok(out.endsWith(rest), 'the registry section after it, without a final newline as before');
  t.equal(out, `${head}${text}\n${rest}`, 'one blank line between the new section and the next');
  t.equal(replaceSection(out, 'vnfs', text), out, 'writing the same section again changes nothing');
});

t.test('the first and the last sections are replaced too; a missing one is appended', async (t) => {
  const dhcp = formatSection({ ...section, name: 'dhcp' }, stamp);
  const first = replaceSection(file, 'dhcp', dhcp);
  t.equal(first, `${file.slice(0, file.indexOf('## dhcp'))}${dhcp}\n${file.slice(file.indexOf('## vnfs'))}`);
  const registry = formatSection({ ...section, name: 'registry' }, stamp);
  t.equal(replaceSection(file, 'registry', registry), `${file.slice(0, file.indexOf('## registry'))}${registry}`);
  const power = formatSection({ ...section, name: 'power' }, stamp);
  t.equal(replaceSection(file, 'power', power), `${file}\n\n${power}`, 'appended after a blank line');
  t.equal(replaceSection(`${file}\n`, 'power', power), `${file}\n\n${power}`);
  t.equal(replaceSection('', 'power', power), power, 'a new file is the section alone');
  t.equal(replaceSection(file, 'vnf', power), `${file}\n\n${power}`, 'a heading matches whole, not by prefix');
});

t.test('a bench run writes its section of the file, a non-default run only when asked', async (t) => {
  const dir = t.testdir({ 'RESULTS.md': file });
  const path = `${dir}/RESULTS.md`;
  const env = { BENCH_RESULTS: process.env.BENCH_RESULTS, BENCH_WRITE: process.env.BENCH_WRITE };
  t.teardown(() => {
    for (const [k, v] of Object.entries(env)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  process.env.BENCH_RESULTS = path;
  delete process.env.BENCH_WRITE;
  const lines: string[] = [];
  const log = console.log;
  console.log = (line: string) => void lines.push(line);
  t.teardown(() => void (console.log = log));

  const smoke = new BenchResults('vnfs');
  smoke.nonDefault('a 20 MiB tree (default 500)');
  smoke.write(section);
  t.equal(readFileSync(path, 'utf8'), file, 'a smoke run leaves the file as it was');
  t.match(lines.pop(), /not written: not the default settings \(a 20 MiB tree \(default 500\)\); BENCH_WRITE=1/);

  process.env.BENCH_WRITE = '1';
  smoke.write(section);
  const written = readFileSync(path, 'utf8');
  t.match(written, /## vnfs\n\n\d+ \w+ \d{4}, \d\d:\d\d UTC \(\d+ s\); \d+ cores, [\d.]+ GiB, Linux .+; load average \(1, 5, 15 min\) [\d. ]+ at the start, [\d. ]+ at the end\. Command: `node .+`\.\n\n\*\*Not the bench's default settings\*\*/);
  t.ok(written.startsWith(file.slice(0, file.indexOf('## vnfs'))) && written.endsWith(file.slice(file.indexOf('## registry'))), 'the rest kept');

  t.throws(() => new BenchResults('power').write(section), TypeError, 'a bench writes its own section only');
});
