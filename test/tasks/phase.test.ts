/** The reload phase of a timeline event, and which failed steps end a reload: table-driven, with the stage names the servers and node scripts record. */
import t from 'tap';
import { isFatal, isLater, phaseOf } from '../../src/tasks/phase.js';
import { rollUp } from '../../src/tasks/record.js';
import type { TaskRecord, TimelineEvent } from '../../src/registry/types.js';

const cases: Array<[TimelineEvent['source'], string, string | null]> = [
  ['power', 'reload', 'power'],
  ['dhcp', 'ack', 'dhcp'],
  ['dhcp', 'proxy-ack', 'dhcp'],
  ['tftp', 'tftp undionly.kpxe', 'kernel'],
  ['http', 'ipxe-script', 'kernel'],
  ['http', 'http vmlinuz', 'kernel'],
  ['node', 'dhcp', 'dhcp'],
  ['http', 'nodescript init', 'init'],
  ['perceus', 'nodescript init', 'init'],
  ['nodescript', 'init 10-vnfs', 'init'],
  ['node', 'got-script', 'init'],
  ['node', 'init-script-start', 'init'],
  ['node', 'getfile', 'getfile'],
  ['node', 'getfile demo.img 45%', 'getfile'],
  ['node', 'image', 'getfile'],
  ['http', 'http image.cpio.gz', 'getfile'],
  ['http', 'nodescript ready', 'ready'],
  ['node', 'ready', 'ready'],
  ['node', 'kernel', null],
  ['node', 'retry', null],
  ['http', 'registered', null],
  ['perceus', 'log', null],
];

t.test('phase of each stage', async (t) => {
  for (const [source, stage, phase] of cases) t.equal(phaseOf({ source, stage }), phase, `${source} ${stage}`);
});

t.test('phases only move forward', async (t) => {
  t.ok(isLater('dhcp', 'power'));
  t.ok(isLater('power', null));
  t.notOk(isLater('kernel', 'getfile'), "the VNFS's own kernel fetched after getfile does not move it back");
  t.notOk(isLater('init', 'init'));
});

t.test('failed steps the node retries by itself do not end a reload', async (t) => {
  const e = (source: TimelineEvent['source'], stage: string, ok = false) => ({ source, stage, ok });
  t.ok(isFatal(e('node', 'failed')));
  t.ok(isFatal(e('http', 'nodescript init')));
  t.ok(isFatal(e('dhcp', 'exhausted')));
  t.notOk(isFatal(e('dhcp', 'nak')));
  t.notOk(isFatal(e('dhcp', 'uncommitted')));
  t.notOk(isFatal(e('http', 'http image.cpio.gz')), 'getfile resumes a cut transfer');
  t.notOk(isFatal(e('node', 'dhcp', true)));
});

t.test("a task's result from its nodes", async (t) => {
  const task = (...results: string[]) => ({ result: 'incomplete', nodes: results.map((result) => ({ result })) }) as unknown as TaskRecord;
  t.equal(rollUp(task('success', 'success')), 'success');
  t.equal(rollUp(task('success', 'failure')), 'partial_success');
  t.equal(rollUp(task('success', 'incomplete')), 'partial_success', 'a node cut short is not a success');
  t.equal(rollUp(task('failure', 'failure')), 'failure');
  t.equal(rollUp(task('failure', 'incomplete')), 'failure');
  t.equal(rollUp(task('incomplete')), 'incomplete');
});
