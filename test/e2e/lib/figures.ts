/**
 * Per-boot figures, in seconds from power-on: DHCP ack, stage-1 kernel + initramfs loaded, `init`
 * nodescript served, `ready`. Taken from the node's timeline (what the servers and the node recorded),
 * so they are the times provisiond saw.
 */
import type { TimelineEntry } from './cluster.js';

export interface BootFigures {
  dhcp: number | null;
  kernel: number | null;
  init: number | null;
  ready: number | null;
}

const STEPS: Array<[keyof BootFigures, (e: TimelineEntry) => boolean]> = [
  ['dhcp', (e) => e.source === 'dhcp' && e.stage === 'ack'],
  // The iPXE script loads the kernel, then the initramfs, then boots: the initramfs is the last piece.
  ['kernel', (e) => e.source === 'http' && /initramfs|initrd/.test(e.stage) && e.ok],
  ['init', (e) => /^nodescript init\b/.test(e.stage) && e.ok],
  ['ready', (e) => (e.source === 'node' && /^ready\b/.test(e.stage)) || /^nodescript ready\b/.test(e.stage)],
];

export function epochMs(time: number | string): number {
  return typeof time === 'number' ? time : Date.parse(time);
}

/** Seconds from `poweredOnAt` to the first event of each step (null when not seen). */
export function bootFigures(events: TimelineEntry[], poweredOnAt: number): BootFigures {
  const out: BootFigures = { dhcp: null, kernel: null, init: null, ready: null };
  for (const [key, match] of STEPS) {
    const e = events.find((ev) => match(ev) && epochMs(ev.time) >= poweredOnAt - 1000);
    if (e) out[key] = Math.max(0, (epochMs(e.time) - poweredOnAt) / 1000);
  }
  return out;
}

/** `bios-1  dhcp 2.1 s  kernel 4.0 s  init 6.3 s  ready 8.8 s`. */
export function formatFigures(label: string, f: BootFigures): string {
  const s = (v: number | null) => (v === null ? '  -   ' : `${v.toFixed(1).padStart(5)} s`);
  return `${label.padEnd(14)} dhcp ack ${s(f.dhcp)}   kernel loaded ${s(f.kernel)}   init script ${s(f.init)}   ready ${s(f.ready)}`;
}
