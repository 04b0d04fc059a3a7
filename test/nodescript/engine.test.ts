import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { arch } from 'node:os';
import { createNodescriptEngine, type NodescriptEngine, type ScriptResult } from '../../src/nodescript/index.js';
import { memoryLogger, silentLogger } from '../../src/log/logger.js';
import { makeStatedir } from '../lib/statedir.js';
import { collect, master, node } from './helpers.js';

const sh = (script: Buffer | string, env: Record<string, string> = {}) => spawnSync('sh', ['-s'], { input: script, env: { PATH: '/bin:/usr/bin', ...env } });

function engine(t: Test, statedir: string, opts: Partial<Parameters<typeof createNodescriptEngine>[0]> = {}): NodescriptEngine {
  const e = createNodescriptEngine({ statedir, logger: silentLogger(), ...opts });
  t.teardown(() => e.close());
  return e;
}

async function render(e: NodescriptEngine, statedir: string, over = {}, results?: ScriptResult[]): Promise<string> {
  return (await collect(e.render(node(over), master(statedir), { onScript: (r) => results?.push(r) }))).toString('latin1');
}

t.test('the Perceus documentation examples run on the node', async (t) => {
  const dir = makeStatedir(t, {
    'nodescripts/init/all/10-hello': '#!/bin/sh\necho echo hello world\n',
    'nodescripts/init/all/20-arch': '#!/bin/sh\necho "MASTER_ARCH=`uname -m`"\n',
    'nodescripts/init/all/30-show': '#!/bin/sh\necho "echo MASTER_ARCH=\\$MASTER_ARCH"\n',
    'nodescripts/init/all/40-debug': '#!/bin/sh\nif [ "$DEBUG" -ne 0 ]; then echo "echo debugging $NODENAME"; fi\n',
  });
  const e = engine(t, dir);
  const quiet = await render(e, dir);
  t.match(quiet, /^#!\/bin\/sh\n# NODESCRIPT START\n# 10-hello \(all\)\necho hello world\n/);
  t.ok(quiet.endsWith('# NODESCRIPT END\n'));
  const run = sh(quiet);
  t.equal(run.status, 0);
  const machine = spawnSync('uname', ['-m']).stdout.toString().trim();
  t.equal(run.stdout.toString(), `hello world\nMASTER_ARCH=${machine}\n`, `node prints hello world and the master's arch (${arch()})`);
  const loud = sh(await render(e, dir, { debug: 1, nodename: 'n0042' }));
  t.match(loud.stdout.toString(), /^debugging n0042$/m, 'the DEBUG example prints only when DEBUG is set');
});

t.test('order across the four folders, override node > group > all > vnfs', async (t) => {
  const say = (s: string) => `#!/bin/sh\necho "echo ${s}"\n`;
  const dir = makeStatedir(t, {
    'nodescripts/init/vnfs/centos/05-v': say('05 vnfs'),
    'nodescripts/init/node/n0001/10-n': say('10 node'),
    'nodescripts/init/all/20-a': say('20 all'),
    'nodescripts/init/group/compute/30-g': say('30 group'),
    'nodescripts/init/all/40-x': say('40 all'),
    'nodescripts/init/vnfs/centos/40-x': say('40 vnfs'),
    'nodescripts/init/all/50-y': say('50 all'),
    'nodescripts/init/group/compute/50-y': say('50 group'),
    'nodescripts/init/vnfs/centos/50-y': say('50 vnfs'),
    'nodescripts/init/group/compute/60-z': say('60 group'),
    'nodescripts/init/node/n0001/60-z': say('60 node'),
    'nodescripts/init/node/n0002/60-z': say('60 other node'),
    'nodescripts/init/all/B-upper': say('B'),
    'nodescripts/init/all/a-lower': say('a'),
    'nodescripts/init/all/.hidden': say('dotfile'),
    'nodescripts/init/all/70-edit~': say('backup'),
    'nodescripts/init/all/70-edit.swp': say('swap'),
    'nodescripts/init/all/70-pkg.rpmnew': say('rpmnew'),
    'nodescripts/init/all/70-pkg.dpkg-dist': say('dpkg'),
    'nodescripts/ready/all/10-ready': say('ready only'),
  });
  const e = engine(t, dir);
  const out = sh(await render(e, dir)).stdout.toString();
  t.equal(out, ['05 vnfs', '10 node', '20 all', '30 group', '40 all', '50 group', '60 node', 'B', 'a', ''].join('\n'), 'bytewise order, most specific wins');
  const plan = await e.plan('init', node());
  const shadowed = plan.filter((p) => p.action === 'shadowed').map((p) => `${p.dir}/${p.name}`);
  t.same(shadowed.sort(), ['all/50-y', 'group/compute/60-z', 'vnfs/centos/40-x', 'vnfs/centos/50-y']);
});

t.test('non-executable files: shell scripts go verbatim, others are skipped', async (t) => {
  const dir = makeStatedir(t, {
    'nodescripts/init/all/10-verbatim': { content: '#!/bin/sh\nX=$((1+2))\necho "node computed $X from \\$ and `echo backticks`"' },
    'nodescripts/init/all/20-notes': { content: 'just some notes\nreboot\n' },
  });
  const logger = memoryLogger();
  const e = engine(t, dir, { logger });
  const results: ScriptResult[] = [];
  const script = await render(e, dir, {}, results);
  t.match(script, /# 10-verbatim \(all\)\n#!\/bin\/sh\nX=\$\(\(1\+2\)\)\necho "node computed \$X from \\\$ and `echo backticks`"\n# skipped: 20-notes \(not executable\)\n# NODESCRIPT END/);
  t.equal(sh(script).stdout.toString(), 'node computed 3 from $ and backticks\n', 'verbatim content runs on the node, unexpanded by the master');
  t.same(results.map((r) => [r.name, r.kind]), [['10-verbatim', 'verbatim'], ['20-notes', 'skipped']]);
  t.ok(logger.lines.some((l) => l.level === 'warn' && /20-notes skipped: not executable/.test(l.msg)));
});

t.test('symbolic links: followed inside the statedir, skipped when dangling or outside', async (t) => {
  const dir = makeStatedir(t, {
    'modules/hello/10-hello': '#!/bin/sh\necho "echo from a module for $NODENAME"\n',
    'nodescripts/init/all/10-hello': { link: '../../../modules/hello/10-hello' },
    'nodescripts/init/all/20-dangling': { link: '../../../modules/nowhere' },
    'nodescripts/init/all/30-outside': { link: '/bin/true' },
  });
  const logger = memoryLogger();
  const e = engine(t, dir, { logger });
  const script = await render(e, dir);
  t.equal(sh(script).stdout.toString(), 'from a module for n0001\n');
  t.match(script, /# skipped: 20-dangling \(symbolic link pointing nowhere\)/);
  t.match(script, /# skipped: 30-outside \(symbolic link pointing outside the statedir/);
  t.equal(logger.lines.filter((l) => l.level === 'warn').length, 2, 'each bad link is warned about');
});

t.test('the environment is cleared and set to the Perceus variables', async (t) => {
  process.env.PVD_SECRET_LEAK = 'leaked';
  t.teardown(() => delete process.env.PVD_SECRET_LEAK);
  const dir = makeStatedir(t, { 'nodescripts/init/all/10-env': '#!/bin/sh\nenv | LC_ALL=C sort | sed "s/^/# /"\npwd | sed "s/^/# cwd /"\n' });
  const e = engine(t, dir);
  const out = await render(e, dir, { attrs: { rack: '12', 'power.driver': 'ipmi' } });
  for (const line of [
    '# PATH=/bin:/usr/bin:/sbin:/usr/sbin', '# STATE=init', '# NODENAME=n0001', '# VNFS=centos', '# ENABLED=1', '# DEBUG=0',
    '# GROUPNAME=compute', '# NODEID=52:54:00:12:34:56', '# IPADDR=10.0.0.101', `# STATEDIR=${dir}`, '# VNFSMETHOD=http',
    '# VNFSMASTER=10.0.0.1:8080', '# VNFSPREFIX=files', '# READY_INTERVAL=300', '# ATTR_RACK=12', '# ATTR_POWER_DRIVER=ipmi', `# cwd ${dir}`,
  ]) t.ok(out.includes(`${line}\n`), line);
  t.notOk(out.includes('PVD_SECRET_LEAK'), "the daemon's environment does not leak");
});

t.test('failures: exit code, signal, policy continue and abort', async (t) => {
  const dir = makeStatedir(t, {
    'nodescripts/init/all/10-ok': '#!/bin/sh\necho "echo before"\n',
    'nodescripts/init/all/20-foo': '#!/bin/sh\necho "echo partial"\necho "oops on stderr" >&2\nexit 3\n',
    'nodescripts/init/all/30-sig': '#!/bin/sh\nkill -9 $$\n',
    'nodescripts/init/all/40-after': '#!/bin/sh\necho "echo after"\n',
  });
  const logger = memoryLogger();
  const cont = engine(t, dir, { logger });
  const results: ScriptResult[] = [];
  const s = await render(cont, dir, {}, results);
  t.match(s, /echo partial\necho "provisiond: nodescript 20-foo failed on the master \(exit 3\)" >&2\n/);
  t.match(s, /echo "provisiond: nodescript 30-sig failed on the master \(killed by SIGKILL\)" >&2\n/);
  const run = sh(s);
  t.equal(run.stdout.toString(), 'before\npartial\nafter\n', 'continue: later scripts still run');
  t.match(run.stderr.toString(), /provisiond: nodescript 20-foo failed on the master \(exit 3\)/, 'the node console shows the failure');
  t.same(results.map((r) => [r.name, r.ok, r.exitCode, r.signal]), [['10-ok', true, 0, null], ['20-foo', false, 3, null], ['30-sig', false, null, 'SIGKILL'], ['40-after', true, 0, null]]);
  const err = logger.lines.find((l) => l.level === 'error' && l.script === '20-foo');
  t.match(err, { node: 'n0001', exitCode: 3, msg: /20-foo failed on the master: exit 3/ }, 'logged with node, script and exit code');
  t.ok(typeof err?.durationMs === 'number');
  t.ok(logger.lines.some((l) => l.msg === 'oops on stderr' && l.script === '20-foo' && l.node === 'n0001'), 'stderr goes to the log with node and script');

  const abort = engine(t, dir, { onError: 'abort' });
  const a = await render(abort, dir);
  t.match(a, /failed on the master \(exit 3\)" >&2\nexit 1\n# NODESCRIPT END\n$/);
  t.notOk(a.includes('30-sig'), 'abort: nothing runs after the failure');
  const ar = sh(a);
  t.equal(ar.status, 1);
  t.equal(ar.stdout.toString(), 'before\npartial\n');
});

t.test('a script past its timeout is killed with its children', async (t) => {
  const dir = makeStatedir(t, {
    'nodescripts/init/all/10-slow': '#!/bin/sh\necho "echo started"\nsleep 100 &\necho $! > "$STATEDIR/child.pid"\nsleep 100\n',
  });
  const e = engine(t, dir, { timeoutMs: 1000 });
  const t0 = Date.now();
  const results: ScriptResult[] = [];
  const s = await render(e, dir, {}, results);
  const took = Date.now() - t0;
  t.ok(took >= 900 && took < 4000, `ended after about the timeout (${took} ms)`);
  t.match(s, /echo started\necho "provisiond: nodescript 10-slow failed on the master \(timed out after 1 s\)" >&2/);
  t.equal(results[0].timedOut, true);
  const { readFileSync } = await import('node:fs');
  const pid = Number(readFileSync(`${dir}/child.pid`, 'utf8'));
  // Gone, or a zombie waiting for its new parent to reap it: either way no longer running.
  const running = () => {
    try {
      return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 20 && running(); i++) await new Promise((r) => setTimeout(r, 50));
  const alive = running();
  t.notOk(alive, 'the background child was killed too');
});

t.test('a script ignoring SIGTERM gets SIGKILL 2 s later', async (t) => {
  const dir = makeStatedir(t, { 'nodescripts/init/all/10-stubborn': '#!/bin/sh\ntrap "" TERM\nwhile :; do sleep 1; done\n' });
  const e = engine(t, dir, { timeoutMs: 500 });
  const t0 = Date.now();
  const results: ScriptResult[] = [];
  await render(e, dir, {}, results);
  const took = Date.now() - t0;
  t.ok(took >= 2400 && took < 6000, `killed after timeout + grace (${took} ms)`);
  t.equal(results[0].timedOut, true);
});

t.test('output: binary-safe, missing newline added, huge output cut', async (t) => {
  const bin = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const dir = makeStatedir(t, {
    'bin.dat': { content: bin },
    'nodescripts/init/all/10-bin': '#!/bin/sh\nprintf ": <<\'BIN\'\\n"\ncat "$STATEDIR/bin.dat"\nprintf "\\nBIN\\n"\n',
    'nodescripts/init/all/20-nonl': '#!/bin/sh\nprintf "echo no newline"\n',
    'nodescripts/init/all/30-next': '#!/bin/sh\necho "echo next"\n',
    'nodescripts/init/all/40-huge': '#!/bin/sh\nhead -c 10000000 /dev/zero | tr "\\0" "#"\n',
  });
  const e = engine(t, dir, { maxOutput: 1024 * 1024 });
  const results: ScriptResult[] = [];
  const out = await collect(e.render(node(), master(dir), { onScript: (r) => results.push(r) }));
  t.ok(out.includes(Buffer.concat([Buffer.from(": <<'BIN'\n"), bin, Buffer.from('\nBIN\n')])), 'every byte 0..255 passes unchanged');
  t.ok(out.includes(Buffer.from('echo no newline\n# 30-next (all)\n')), 'a newline is added so the next line is not glued');
  const huge = results.find((r) => r.name === '40-huge')!;
  t.equal(huge.truncated, true);
  t.equal(huge.bytes, 1024 * 1024);
  t.equal(huge.ok, false);
  t.ok(out.length < 1024 * 1024 + 4096, `the result stays near the cap (${out.length} bytes)`);
  t.match(out.subarray(-300).toString(), /nodescript 40-huge failed on the master \(output over 1048576 bytes, cut\)/);
});

t.test('streaming: the first output is readable before a slow later script ends', async (t) => {
  const dir = makeStatedir(t, {
    'nodescripts/init/all/10-fast': '#!/bin/sh\necho "echo fast"\n',
    'nodescripts/init/all/20-slow': '#!/bin/sh\nsleep 3\necho "echo slow"\n',
  });
  const e = engine(t, dir);
  const t0 = Date.now();
  const stream = e.render(node(), master(dir));
  let seen = '';
  let firstAt = 0;
  for await (const c of stream) {
    seen += c.toString();
    if (!firstAt && seen.includes('echo fast\n')) firstAt = Date.now() - t0;
  }
  const total = Date.now() - t0;
  t.ok(firstAt > 0 && firstAt < 2000, `first script seen after ${firstAt} ms`);
  t.ok(total >= 2900, `whole script after ${total} ms`);
});

t.test('a reader going away kills the running script', async (t) => {
  const dir = makeStatedir(t, { 'nodescripts/init/all/10-slow': '#!/bin/sh\necho "echo hi"\nexec sleep 60\n' });
  const e = engine(t, dir);
  const ac = new AbortController();
  const stream = e.render(node(), master(dir), { signal: ac.signal });
  let seen = '';
  await new Promise<void>((resolve) => stream.on('data', (c: Buffer) => (seen += c.toString()).includes('echo hi\n') && resolve()));
  t.equal(e.running, 1, 'the script runs');
  ac.abort();
  stream.on('error', () => {});
  const t0 = Date.now();
  while (e.running > 0 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
  t.equal(e.running, 0, 'the process is gone');
});

t.test('zero scripts give a valid script with only the markers; bad names are refused', async (t) => {
  const dir = makeStatedir(t, {});
  const e = engine(t, dir);
  t.equal(await render(e, dir, { state: 'rescue' }), '#!/bin/sh\n# NODESCRIPT START\n# NODESCRIPT END\n');
  t.throws(() => e.render(node({ state: 'in it' }), master(dir)), /invalid provisionary state "in it"/);
  t.throws(() => e.render(node({ state: '../etc' }), master(dir)), /invalid provisionary state/);
  t.throws(() => e.render(node({ group: '../../etc' }), master(dir)), /invalid group name/);
  t.throws(() => e.render(node({ nodename: 'a/b' }), master(dir)), /invalid node name/);
  t.throws(() => e.render(node({ vnfs: '..' }), master(dir)), /invalid vnfs name/);
  t.throws(() => createNodescriptEngine({ statedir: dir, logger: silentLogger(), concurrency: 0 }), TypeError);
});

t.test('the spawner (vfork, built at npm ci) runs scripts as exec would: shebangs, no shebang, exit codes, signals', async (t) => {
  const dir = makeStatedir(t, {
    'nodescripts/init/all/10-a': '#!/bin/sh\necho "echo a $NODENAME"\necho "to the log" >&2\n',
    'nodescripts/init/all/20-b': '#!/bin/sh\nexit 4\n',
    'nodescripts/init/all/30-noexec': { content: 'no shebang here\n', mode: 0o755 },
    'nodescripts/init/all/40-sig': '#!/bin/sh\nkill -TERM $$\n',
    'nodescripts/init/all/50-last': '#!/usr/bin/env perl\nprint "echo perl on the master\\n";\n',
  });
  const logger = memoryLogger();
  const output = await render(engine(t, dir, { logger }), dir);
  t.ok(logger.lines.some((l) => l.msg === 'to the log' && l.script === '10-a'), 'stderr logged');
  t.match(output, /echo a n0001\n[\s\S]*20-b failed on the master \(exit 4\)[\s\S]*30-noexec failed on the master \(exit 127\)[\s\S]*40-sig failed on the master \(killed by SIGTERM\)[\s\S]*echo perl on the master\n# NODESCRIPT END\n$/);
});

t.test('close with a grace period lets renders in flight finish, then refuses new ones', async (t) => {
  const dir = makeStatedir(t, {
    'nodescripts/init/all/10-a': '#!/bin/sh\nsleep 0.3\necho "echo a"\n',
    'nodescripts/init/all/20-b': '#!/bin/sh\nsleep 0.3\necho "echo b"\n',
  });
  const e = createNodescriptEngine({ statedir: dir, logger: silentLogger() });
  const pending = collect(e.render(node(), master(dir)));
  await new Promise((r) => setTimeout(r, 100));
  t.equal(e.renders, 1);
  await e.close({ graceMs: 10_000 });
  t.equal(sh(await pending).stdout.toString(), 'a\nb\n', 'the render in flight completed across both scripts');
  t.throws(() => e.render(node(), master(dir)), /nodescript engine is closed/);
});

t.test('a spawner that dies fails the scripts in flight clearly, and the next render gets a new one', async (t) => {
  const { readdirSync, readFileSync: read } = await import('node:fs');
  const spawners = () =>
    new Set(
      readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .filter((d) => {
          try {
            const stat = read(`/proc/${d}/stat`, 'utf8');
            return stat.includes('(provisiond-spaw') && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid;
          } catch {
            return false;
          }
        }),
    );
  const before = spawners();
  const dir = makeStatedir(t, { 'nodescripts/init/all/10-slow': '#!/bin/sh\necho "echo started"\nsleep 2\necho "echo done"\n' });
  const logger = memoryLogger();
  const e = engine(t, dir, { logger });
  const mine = [...spawners()].filter((p) => !before.has(p));
  t.equal(mine.length, 1, 'the engine started its spawner');
  const pending = collect(e.render(node(), master(dir)));
  await new Promise((r) => setTimeout(r, 500));
  process.kill(Number(mine[0]), 'SIGKILL');
  const out = (await pending).toString();
  t.match(out, /nodescript 10-slow failed on the master \(nodescript spawner exited \(SIGKILL\)\)/);
  t.ok(logger.lines.some((l) => l.level === 'error' && /spawner exited/.test(l.msg)), 'logged');
  const again = sh(await render(e, dir)).stdout.toString();
  t.equal(again, 'started\ndone\n', 'a new spawner serves the next render');
});
