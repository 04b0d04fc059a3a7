/**
 * The DHCP tests' real clients, run inside a lab's namespace (test/lib/netns.ts): busybox udhcpc, ISC
 * dhclient, and the project's scripted client (test/dhcp/fixtures/dhcp-client.ts); and the packet
 * counter of an interface.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nsExec } from '../lib/netns.js';
import { TS_NODE_ARGS } from '../ts-child.js';

/** busybox udhcpc in `ns` on `dev`: the environment its script saw on `bound`, or null (no lease). */
export function udhcpc(ns: string, dev: string, dir: string, extra: string[] = [], tries = 3): Record<string, string> | null {
  const script = `${dir}/udhcpc.sh`;
  writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && env > ${dir}/udhcpc-${ns}-${dev}.env\nexit 0\n`, { mode: 0o755 });
  rmSync(`${dir}/udhcpc-${ns}-${dev}.env`, { force: true });
  try {
    nsExec(ns, 'busybox', ['udhcpc', '-i', dev, '-n', '-q', '-f', '-s', script, '-t', String(tries), '-T', '1', ...extra]);
  } catch {
    return null;
  }
  const text = readFileSync(`${dir}/udhcpc-${ns}-${dev}.env`, 'utf8');
  return Object.fromEntries(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** ISC dhclient in `ns` on `dev`, one attempt: the lease file it wrote, or null. */
export function dhclient(ns: string, dev: string, dir: string, conf = ''): string | null {
  const lf = `${dir}/dhclient-${dev}.leases`;
  const pf = `${dir}/dhclient-${dev}.pid`;
  writeFileSync(`${dir}/dhclient.conf`, conf);
  rmSync(lf, { force: true });
  try {
    nsExec(ns, 'timeout', ['30', 'dhclient', '-1', '-4', '-cf', `${dir}/dhclient.conf`, '-lf', lf, '-pf', pf, '-sf', '/bin/true', dev]);
  } catch {
    return null;
  } finally {
    // dhclient daemonizes once bound: stop it so it does not renew behind the test's back.
    try {
      process.kill(Number(readFileSync(pf, 'utf8').trim()), 'SIGKILL');
    } catch {}
  }
  return readFileSync(lf, 'utf8');
}

/** Packets sent by `dev` so far (to prove a reply did not leave by it). */
export function txPackets(ns: string, dev: string): number {
  return Number(nsExec(ns, 'cat', [`/sys/class/net/${dev}/statistics/tx_packets`]).trim());
}

let jobs = 0;

/** Runs the scripted client fixture in `ns` with a JSON job; returns its parsed output. */
export function scriptedClient(ns: string, job: unknown, address = '10.77.0.250/24', dev = 'eth0'): unknown[] {
  const jobFile = join(tmpdir(), `pvd-dhcp-job-${process.pid}-${++jobs}.json`);
  // A socket client needs an address to send from (udhcpc and dhclient use raw sockets instead).
  nsExec(ns, 'ip', ['addr', 'add', address, 'dev', dev]);
  // ...and a route for its broadcasts to 255.255.255.255.
  nsExec(ns, 'ip', ['route', 'replace', 'default', 'dev', dev]);
  try {
    // Through a file: a job with thousands of MACs is past the kernel's limit for one argument.
    writeFileSync(jobFile, JSON.stringify(job));
    return JSON.parse(nsExec(ns, process.execPath, [...TS_NODE_ARGS, 'test/dhcp/fixtures/dhcp-client.ts', `@${jobFile}`])) as unknown[];
  } finally {
    rmSync(jobFile, { force: true });
    nsExec(ns, 'ip', ['route', 'del', 'default', 'dev', dev]);
    nsExec(ns, 'ip', ['addr', 'del', address, 'dev', dev]);
  }
}
