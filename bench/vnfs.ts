/**
 * bench/vnfs: building the node image of a 500 MiB root file system.
 *
 * The tree is real system files (copied from /usr, so compression behaves as on a real VNFS). Ours:
 * `writeTreeImage` (streaming cpio newc + gzip level 6 on every core). Peer, in the same run and on the
 * same tree: `find . | cpio -o -H newc | gzip` (GNU cpio, gzip -6), as Perceus built vnfs.img. Both run
 * as child processes under GNU time, so wall time and peak memory (max RSS of any process of the job)
 * are measured the same way. Ours is also run on a tree a fifth of the size, to show memory does not
 * grow with the tree. Goal: ratio (peer time / our time) >= 1.0 with flat memory.
 *
 * `node --import tsx bench/vnfs.ts [MiB]` (default 500). Needs GNU time, cpio, gzip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { BenchResults } from './lib/results.js';

const here = new URL('.', import.meta.url).pathname;

if (process.argv[2] === '--child') {
  // The measured job: build the image of the tree into out.
  const { writeTreeImage } = await import('../src/vnfs/image.js');
  const [, , , tree, out] = process.argv;
  await writeTreeImage(tree!, out!, { level: 6 });
  process.exit(0);
}

const targetMiB = Number(process.argv[2] ?? 500);
const results = new BenchResults('vnfs');
if (targetMiB !== 500) results.nonDefault(`a ${targetMiB} MiB tree (default 500)`);

/** Copies regular files from /usr into `dest` until `bytes` are there; returns bytes and file count. */
function makeTree(dest: string, bytes: number): { bytes: number; files: number } {
  const list = execFileSync('sh', ['-c', 'find /usr/lib /usr/share /usr/bin /usr/sbin -xdev -type f -size -64M 2>/dev/null | sort'], { encoding: 'utf8', maxBuffer: 256 << 20 }).split('\n').filter(Boolean);
  let total = 0;
  let files = 0;
  for (const f of list) {
    if (total >= bytes) break;
    let size: number;
    try {
      size = statSync(f).size;
      const to = join(dest, f);
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(f, to);
    } catch {
      continue;
    }
    total += size;
    files++;
  }
  return { bytes: total, files };
}

interface Measured {
  seconds: number;
  maxRssMiB: number;
  outBytes: number;
}

function timed(cmd: string[], out: string, cwd?: string): Measured {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', ...cmd], { cwd, encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')}: exit ${r.status}: ${r.stderr}`);
  const last = r.stderr.trim().split('\n').pop()!.split(' ');
  return { seconds: Number(last[0]), maxRssMiB: Number(last[1]) / 1024, outBytes: statSync(out).size };
}

const work = mkdtempSync(join(tmpdir(), 'pvd-bench-vnfs-'));
try {
  const tree = join(work, 'tree');
  const small = join(work, 'small');
  const t = makeTree(tree, targetMiB << 20);
  const s = makeTree(small, (targetMiB << 20) / 5);
  console.log(`tree: ${(t.bytes / 1048576).toFixed(0)} MiB in ${t.files} files (copied from /usr); small tree ${(s.bytes / 1048576).toFixed(0)} MiB in ${s.files} files`);
  execFileSync('sh', ['-c', `tar cf - -C '${work}' . > /dev/null`]); // warm the page cache for both

  const peerOut = join(work, 'peer.cpio.gz');
  const oursOut = join(work, 'ours.cpio.gz');
  const node = [process.execPath, '--import', 'tsx', join(here, 'vnfs.ts'), '--child'];
  const runs: Array<{ peer: Measured; ours: Measured }> = [];
  for (let i = 0; i < 2; i++) {
    const peer = timed(['sh', '-c', `find . | cpio -o -H newc --quiet | gzip -6 > '${peerOut}'`], peerOut, tree);
    const ours = timed([...node, tree, oursOut], oursOut);
    runs.push({ peer, ours });
    console.log(`round ${i + 1}: find|cpio|gzip ${peer.seconds.toFixed(2)} s, ${peer.maxRssMiB.toFixed(1)} MiB peak; provisiond ${ours.seconds.toFixed(2)} s, ${ours.maxRssMiB.toFixed(1)} MiB peak`);
  }
  const oursSmall = timed([...node, small, join(work, 'small.cpio.gz')], join(work, 'small.cpio.gz'));
  const best = (k: 'peer' | 'ours'): Measured => runs.map((r) => r[k]).sort((a, b) => a.seconds - b.seconds)[0]!;
  const peer = best('peer');
  const ours = best('ours');
  // Same content: the two archives list the same names (ours is sorted, find's is not).
  const names = (f: string): string[] => execFileSync('sh', ['-c', `gzip -dc '${f}' | cpio -t --quiet | sed 's|^\\./||' | grep -v '^\\.$' | sort`], { encoding: 'utf8', maxBuffer: 256 << 20 }).split('\n');
  const same = names(peerOut).join('\n') === names(oursOut).join('\n');
  const rawBytes = gunzipSync(readFileSync(oursOut)).length;
  console.log('');
  console.log(`image of ${(t.bytes / 1048576).toFixed(0)} MiB rootfs (${(rawBytes / 1048576).toFixed(0)} MiB cpio), best of ${runs.length}:`);
  console.log(`  peer  find | cpio -o -H newc | gzip -6 : ${peer.seconds.toFixed(2)} s  ${(t.bytes / 1048576 / peer.seconds).toFixed(1)} MiB/s  peak ${peer.maxRssMiB.toFixed(1)} MiB  image ${(peer.outBytes / 1048576).toFixed(1)} MiB`);
  console.log(`  ours  provisiond writeTreeImage        : ${ours.seconds.toFixed(2)} s  ${(t.bytes / 1048576 / ours.seconds).toFixed(1)} MiB/s  peak ${ours.maxRssMiB.toFixed(1)} MiB  image ${(ours.outBytes / 1048576).toFixed(1)} MiB`);
  console.log(`  ratio (peer time / our time): ${(peer.seconds / ours.seconds).toFixed(2)}x  (goal >= 1.0)`);
  console.log(`  memory flat: ours peaks at ${oursSmall.maxRssMiB.toFixed(1)} MiB on the ${(s.bytes / 1048576).toFixed(0)} MiB tree and ${ours.maxRssMiB.toFixed(1)} MiB on the ${(t.bytes / 1048576).toFixed(0)} MiB tree`);
  console.log(`  same entries in both archives: ${same ? 'yes' : 'NO'}; compressed size ratio ours/peer ${(ours.outBytes / peer.outBytes).toFixed(3)}`);
  const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
  results.write({
    name: 'vnfs',
    title:
      `\`bench/vnfs.ts\`: the image of a ${(t.bytes / 1048576).toFixed(0)} MiB tree (${t.files} files copied from /usr, ${(rawBytes / 1048576).toFixed(0)} MiB of cpio), ` +
      `provisiond's \`writeTreeImage\` (cpio newc + gzip -6 on every core) against \`find . | cpio -o -H newc | gzip -6\`, ` +
      `both under GNU time; best of ${runs.length} rounds (the peer first in each). Ratio: the peer's / ours (> 1: we are faster or smaller).`,
    columns: [{ title: 'measure' }, { title: 'provisiond', align: 'right' }, { title: 'find | cpio | gzip -6', align: 'right' }, { title: 'ratio', align: 'right' }],
    rows: [
      ['time', `${ours.seconds.toFixed(2)} s`, `${peer.seconds.toFixed(2)} s`, `**${(peer.seconds / ours.seconds).toFixed(2)}x**`],
      ['throughput', `${(t.bytes / 1048576 / ours.seconds).toFixed(1)} MiB/s`, `${(t.bytes / 1048576 / peer.seconds).toFixed(1)} MiB/s`, `${(peer.seconds / ours.seconds).toFixed(2)}x`],
      ['peak memory', mib(ours.maxRssMiB * 1048576), mib(peer.maxRssMiB * 1048576), `${(peer.maxRssMiB / ours.maxRssMiB).toFixed(2)}x`],
      ['image size', mib(ours.outBytes), mib(peer.outBytes), `${(peer.outBytes / ours.outBytes).toFixed(3)}x`],
      ...runs.map((r, i) => [`round ${i + 1}: time, peak memory`, `${r.ours.seconds.toFixed(2)} s, ${r.ours.maxRssMiB.toFixed(1)} MiB`, `${r.peer.seconds.toFixed(2)} s, ${r.peer.maxRssMiB.toFixed(1)} MiB`, `${(r.peer.seconds / r.ours.seconds).toFixed(2)}x`]),
    ],
    notes: [
      `Goal: ratio >= 1.0 with flat memory: ${peer.seconds / ours.seconds >= 1 ? 'met' : 'NOT met'} on time; ours peaks at ${oursSmall.maxRssMiB.toFixed(1)} MiB on the ${(s.bytes / 1048576).toFixed(0)} MiB tree and ${ours.maxRssMiB.toFixed(1)} MiB on the ${(t.bytes / 1048576).toFixed(0)} MiB tree.`,
      `Same entries in both archives: ${same ? 'yes' : 'NO'}.`,
    ],
  });
} finally {
  rmSync(work, { recursive: true, force: true });
}
