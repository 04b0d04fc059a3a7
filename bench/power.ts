/**
 * bench/power: `provisiond power status` across N simulated BMCs (OpenIPMI ipmi_sim, real ipmitool
 * over lanplus), against what an admin would otherwise run in the same session: a shell loop of
 * ipmitool (one BMC after the other) and `xargs -P` of ipmitool (parallel, same concurrency). The
 * provisiond figure includes its own start-up (registry open, config) as an admin would see it.
 *
 *   node --import tsx bench/power.ts [--bmcs N]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseConfig } from '../src/config/load.js';
import { silentLogger } from '../src/log/logger.js';
import { openRegistry } from '../src/registry/open.js';
import { fanOut } from '../src/power/fanout.js';
import { IpmiDriver } from '../src/power/ipmi/driver.js';
import { powerSettings } from '../src/power/settings.js';
import { BenchResults } from './lib/results.js';
import { haveIpmiSim, IPMI_PASSWORD, IPMI_USER, startIpmiSim, type IpmiSim } from '../test/power/lib/ipmi-sim.js';

const args = process.argv.slice(2);
const N = Number(args[args.indexOf('--bmcs') + 1]) || 16;
const CONCURRENCY = 16;
const results = new BenchResults('power');
if (N !== 16) results.nonDefault(`--bmcs ${N} (default 16)`);

if (!haveIpmiSim()) {
  console.log('bench/power: skipped (needs ipmi_sim and ipmitool: apt-get install openipmi ipmitool)');
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'pvd-bench-power-'));
const sims: IpmiSim[] = [];
const line = createServer((s) => s.on('error', () => {}));
try {
  await new Promise<void>((r) => line.listen(0, '127.0.0.1', () => r()));
  const solPort = (line.address() as { port: number }).port;
  for (let i = 0; i < N; i++) {
    const d = join(dir, `bmc${i}`);
    mkdirSync(d);
    sims.push(await startIpmiSim(d, solPort));
  }
  const cfgFile = join(dir, 'provisiond.yaml');
  writeFileSync(cfgFile, `statedir: ${dir}\npower:\n  concurrency: ${CONCURRENCY}\n  timeout: 30\n  retries: 0\n`);
  const config = parseConfig(readFileSync(cfgFile, 'utf8'), cfgFile);
  const reg = await openRegistry(config, silentLogger());
  await reg.importNodes(sims.map((_, i) => ({ name: `n${String(i + 1).padStart(4, '0')}`, nodeid: `52:54:00:00:10:${(i + 1).toString(16).padStart(2, '0')}`, group: 'compute' })));
  await reg.updateGroup('compute', { attrs: { 'power.driver': 'ipmi', 'power.user': IPMI_USER, 'power.password': IPMI_PASSWORD, 'power.args': '-C 1' } });
  for (let i = 0; i < N; i++) await reg.updateNode(`n${String(i + 1).padStart(4, '0')}`, { attrs: { 'power.address': sims[i]!.address } });
  await reg.close();

  const time = (file: string, a: string[], env: NodeJS.ProcessEnv = process.env) => {
    const t0 = performance.now();
    const r = spawnSync(file, a, { encoding: 'utf8', env, maxBuffer: 16 << 20 });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`${file} ${a.slice(0, 4).join(' ')}: exit ${r.status}: ${r.stderr}`);
    return { ms, out: r.stdout };
  };
  const hosts = sims.map((s) => s.address.split(':')).map(([h, p]) => `${h} ${p}`).join('\n');
  writeFileSync(join(dir, 'hosts'), `${hosts}\n`);
  const ipmi = `ipmitool -I lanplus -C 1 -H "$0" -p "$1" -U ${IPMI_USER} -E chassis power status`;
  const env = { ...process.env, IPMI_PASSWORD };

  const ours = time(process.execPath, ['bin/provisiond.js', '-c', cfgFile, 'power', 'status', 'n*']);
  const on = ours.out.split('\n').filter((l) => / off$/.test(l)).length;
  if (on !== N) throw new Error(`provisiond answered for ${on} of ${N} BMCs:\n${ours.out}`);
  const startup = time(process.execPath, ['bin/provisiond.js', '--help']);
  const drivers = sims.map((sim, i) => ({
    name: `n${i}`,
    driver: new IpmiDriver({ name: `n${i}`, nodeid: '52:54:00:00:00:01', settings: powerSettings(`n${i}`, { 'power.driver': 'ipmi', 'power.address': sim.address, 'power.user': IPMI_USER, 'power.password': IPMI_PASSWORD, 'power.args': '-C 1' }, dir) }),
  }));
  const t0 = performance.now();
  const lib = await fanOut(drivers, (d, signal) => d.driver.status({ signal }), { concurrency: CONCURRENCY, timeout: 30, retries: 0 });
  const libMs = performance.now() - t0;
  if (lib.some((r) => !r.ok)) throw new Error(`fan-out failed: ${lib.find((r) => !r.ok)?.error}`);
  const loop = time('sh', ['-c', `while read h p; do sh -c '${ipmi}' "$h" "$p" >/dev/null || exit 1; done < ${join(dir, 'hosts')}`], env);
  const xargs = time('sh', ['-c', `xargs -P ${CONCURRENCY} -L 1 sh -c '${ipmi} >/dev/null' < ${join(dir, 'hosts')}`], env);

  const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`power status of ${N} BMCs (ipmi_sim, ipmitool lanplus), concurrency ${CONCURRENCY}`);
  console.log(`  provisiond power status (CLI)     ${fmt(ours.ms)}  of which CLI start-up alone (--help) ${fmt(startup.ms)}`);
  console.log(`  provisiond fan-out (in process)   ${fmt(libMs)}  (what the daemon/API pays)`);
  console.log(`  peer: shell loop of ipmitool      ${fmt(loop.ms)}  ratio loop/ours-in-process ${(loop.ms / libMs).toFixed(2)}`);
  console.log(`  peer: xargs -P ${CONCURRENCY} ipmitool        ${fmt(xargs.ms)}  ratio xargs/ours-in-process ${(xargs.ms / libMs).toFixed(2)}, xargs/ours-CLI ${(xargs.ms / ours.ms).toFixed(2)}`);
  results.write({
    name: 'power',
    title:
      `\`bench/power.ts\`: \`power status\` of ${N} simulated BMCs (ipmi_sim, ipmitool over lanplus), concurrency ${CONCURRENCY}: ` +
      `provisiond in process (the fan-out the daemon and the API run) and as the CLI command (its start-up included), ` +
      `against a shell loop of ipmitool and \`xargs -P ${CONCURRENCY}\` of ipmitool. Ratio: the peer's time / ours (> 1: we are faster).`,
    columns: [{ title: 'provisiond' }, { title: 'time', align: 'right' }, { title: 'peer' }, { title: 'time', align: 'right' }, { title: 'ratio', align: 'right' }],
    rows: [
      ['fan-out, in process', fmt(libMs), 'shell loop of ipmitool', fmt(loop.ms), `**${(loop.ms / libMs).toFixed(2)}x**`],
      ['fan-out, in process', fmt(libMs), `xargs -P ${CONCURRENCY} ipmitool`, fmt(xargs.ms), `**${(xargs.ms / libMs).toFixed(2)}x**`],
      ['`provisiond power status` (CLI)', fmt(ours.ms), `xargs -P ${CONCURRENCY} ipmitool`, fmt(xargs.ms), `${(xargs.ms / ours.ms).toFixed(2)}x`],
    ],
    notes: [`The CLI command includes its start-up: \`provisiond --help\` alone took ${fmt(startup.ms)} in the same run.`],
  });
} finally {
  await Promise.all(sims.map((s) => s.stop()));
  line.close();
  rmSync(dir, { recursive: true, force: true });
}
