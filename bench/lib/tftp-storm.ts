/**
 * bench/tftp's storm client, run inside the bench's namespace: `nodes` reads of one file started at
 * once, each as a PXE ROM reads its loader (test/lib/storm/tftp-client.ts). Prints one JSON line:
 * seconds until the last read ended, per-read p50/p99 in ms, reads failed (with the first reason),
 * packets resent by the clients.
 * Argument: JSON `{ server, port, file, nodes, bytes }` (`bytes`: the file's size, to check each read).
 */
import { tftpRead } from '../../test/lib/storm/tftp-client.js';

const { server, port, file, nodes, bytes } = JSON.parse(process.argv[2]!) as { server: string; port: number; file: string; nodes: number; bytes: number };
const times: number[] = [];
let failed = 0;
let firstError = '';
let retransmits = 0;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: nodes }, async () => {
    const start = performance.now();
    const r = await tftpRead(server, server, port, file);
    retransmits += r.retransmits;
    if ('error' in r || r.bytes !== bytes) {
      failed++;
      firstError ||= 'error' in r ? r.error : `short read: ${r.bytes} of ${bytes} bytes`;
    } else times.push(performance.now() - start);
  }),
);
const seconds = (performance.now() - t0) / 1000;
times.sort((a, b) => a - b);
const pct = (p: number) => (times.length ? times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))]! : NaN);
console.log(JSON.stringify({ seconds, p50: pct(50), p99: pct(99), failed, firstError, retransmits }));
