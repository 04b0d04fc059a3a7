/** `provisiond script render|list|lint`, run as an admin runs them: ./bin/provisiond.js with a temp statedir and registry. */
import t, { type Test } from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { makeStatedir } from '../lib/statedir.js';

const BIN = resolve('bin/provisiond.js');

function cli(dir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(BIN, ['--config', join(dir, 'provisiond.yaml'), ...args], { cwd: dir, timeout: 60_000 }, (err, stdout, stderr) =>
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function statedir(t: Test) {
  const dir = makeStatedir(t, {
    'nodescripts/init/all/10-hello': '#!/bin/sh\necho "echo hello $NODENAME from group $GROUPNAME rack $ATTR_RACK ip $IPADDR"\n',
    'nodescripts/init/all/20-verbatim': { content: '#!/bin/sh\necho "node side"\n' },
    'nodescripts/init/all/30-notes': { content: 'notes\n' },
    'nodescripts/init/all/40-over': '#!/bin/sh\necho "echo all"\n',
    'nodescripts/init/group/compute/40-over': '#!/bin/sh\necho "echo group compute"\n',
    'nodescripts/init/group/gpu/50-fail': '#!/bin/sh\necho "cuda missing" >&2\nexit 3\n',
  });
  writeFileSync(join(dir, 'provisiond.yaml'), `statedir: ${dir}\ndatabase: sqlite:var/provisiond.db\nmaster: 10.1.1.1\nlog:\n  level: warn\n`);
  return dir;
}

t.test('render takes the node from the registry; options override', async (t) => {
  const dir = statedir(t);
  t.equal((await cli(dir, ['node', 'add', '52:54:00:aa:bb:01', 'n0001', '--group', 'compute', '--ipaddr', '10.1.1.51'])).code, 0);
  t.equal((await cli(dir, ['node', 'set', 'rack', '12', 'n0001'])).code, 0);
  const r = await cli(dir, ['script', 'render', 'init', 'n0001']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^#!\/bin\/sh\n# NODESCRIPT START\n# 10-hello \(all\)\n/);
  const run = spawnSync('sh', ['-s'], { input: r.stdout });
  t.equal(run.stdout.toString(), 'hello n0001 from group compute rack 12 ip 10.1.1.51\nnode side\ngroup compute\n');
  const byMac = await cli(dir, ['script', 'render', 'init', '52-54-00-AA-BB-01', '--group', 'gpu', '--ipaddr', '10.9.9.9']);
  t.equal(byMac.code, 1, 'a failed script makes the exit status 1');
  t.match(byMac.stdout, /echo "hello n0001 from group gpu rack 12 ip 10\.9\.9\.9"|hello n0001 from group gpu rack 12 ip 10\.9\.9\.9/);
  t.match(byMac.stdout, /nodescript 50-fail failed on the master \(exit 3\)/);
  t.match(byMac.stderr, /^50-fail: cuda missing$/m, "the script's stderr is shown");
});

t.test('render for a node not in the registry', async (t) => {
  const dir = statedir(t);
  const refused = await cli(dir, ['script', 'render', 'init', 'n0404']);
  t.equal(refused.code, 1);
  t.equal(refused.stderr, 'provisiond: no node "n0404" in the registry (describe an unregistered node with --nodeid MAC [--group --vnfs ...])\n');
  const described = await cli(dir, ['script', 'render', 'init', 'n0404', '--nodeid', '52:54:00:00:04:04', '--group', 'compute', '--no-registry']);
  t.equal(described.code, 0, described.stderr);
  t.match(described.stdout, /echo hello n0404 from group compute/);
  for (const [args, msg] of [
    [['script', 'render', 'in/it', 'n1', '--nodeid', '52:54:00:00:00:01'], /^provisiond: invalid provisionary state "in\/it"/],
    [['script', 'render', 'init', 'n1', '--nodeid', 'zz'], /^provisiond: invalid --nodeid "zz"/],
    [['script', 'render', 'init', 'n1', '--nodeid', '52:54:00:00:00:01', '--group', '../x'], /^provisiond: invalid group name/],
    [['script', 'render', 'init', 'n1', '--nodeid', '52:54:00:00:00:01', '--enabled', 'maybe'], /^provisiond: invalid --enabled/],
  ] as Array<[string[], RegExp]>) {
    const r = await cli(dir, args);
    t.equal(r.code, 1, args.join(' '));
    t.match(r.stderr, msg);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
});

t.test('list shows order, folder and what happens to each script', async (t) => {
  const dir = statedir(t);
  await cli(dir, ['node', 'add', '52:54:00:aa:bb:02', 'n0002', '--group', 'compute']);
  const r = await cli(dir, ['script', 'list', 'init', 'n0002']);
  t.equal(r.code, 0, r.stderr);
  t.equal(
    r.stdout,
    [
      '10-hello\tall\tmaster\truns on the master; its output goes to the node',
      '20-verbatim\tall\tnode\tsent to the node verbatim',
      '30-notes\tall\tskipped\tnot executable',
      '40-over\tgroup/compute\tmaster\truns on the master; its output goes to the node',
      '40-over\tall\tshadowed\toverridden by group/compute/40-over',
      '',
    ].join('\n'),
  );
  const json = JSON.parse((await cli(dir, ['script', 'list', 'init', 'n0002', '--json'])).stdout);
  t.same(json.map((e: { name: string; action: string }) => `${e.name}:${e.action}`), ['10-hello:master', '20-verbatim:verbatim', '30-notes:skipped', '40-over:master', '40-over:shadowed']);
});

t.test('lint reports file and line, and exits 1 on errors only', async (t) => {
  const dir = statedir(t);
  const warn = await cli(dir, ['script', 'lint']);
  t.equal(warn.code, 0, 'warnings alone exit 0');
  t.match(warn.stdout, /nodescripts\/init\/all\/30-notes: warning: not executable/);
  t.match(warn.stderr, /0 errors, 1 warning/);
  writeFileSync(join(dir, 'nodescripts/init/all/60-reboot'), '#!/bin/sh\necho "echo bye"\nreboot\n', { mode: 0o755 });
  const err = await cli(dir, ['script', 'lint', 'init']);
  t.equal(err.code, 1);
  t.match(err.stdout, /^nodescripts\/init\/all\/60-reboot:3: error: runs reboot on the master, not on the node/m);
  const shipped = await cli(dir, ['script', 'lint', '--dir', resolve('nodescripts')]);
  t.equal(shipped.code, 0, shipped.stdout);
  t.equal(shipped.stdout, '', 'the shipped tree is clean');
});

t.test('--help on the script commands', async (t) => {
  const dir = statedir(t);
  const noun = await cli(dir, ['script', '--help']);
  t.equal(noun.code, 0);
  t.match(noun.stdout, /render \[options\] <state> <node>[\s\S]*list\|ls \[options\] <state> <node>[\s\S]*lint \[options\] \[state\]/);
  const verb = await cli(dir, ['script', 'render', '--help']);
  t.equal(verb.code, 0);
  t.match(verb.stdout, /Usage: provisiond script render \[options\] <state> <node>[\s\S]*--nodeid <mac>[\s\S]*--no-registry/);
});
