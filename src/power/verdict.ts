/**
 * Apache VCL's node_status verdict: `READY` when the node is in the `ready` state, was heard from
 * within `node.timeout`, and runs the VNFS it is assigned; `RELOAD` otherwise, with the reason an
 * admin acts on. Pure: the caller brings the node, the clock and, when known, the power state.
 */
import type { PowerState } from './types.js';

export interface VerdictInput {
  /** The resolved node (registry `resolve()`): its assigned vnfs, state and last contact. */
  node: { name: string; vnfs: string; enabled: boolean; state: string | null; lastcontact: number | null };
  /** Milliseconds since the epoch. */
  now: number;
  /** Seconds without contact before the node counts as gone (config `node.timeout`). */
  timeout: number;
  /** The VNFS the node reports running, when the registry records it; null when unknown. */
  runningVnfs?: string | null;
  /** The sha256 of the image the node booted (registry `bootImage`); null when not reported. */
  bootImage?: string | null;
  /** The sha256 of its VNFS's image now; null when unknown (no image built). */
  currentImage?: string | null;
  /** From the node's power driver, when one is set. */
  power?: PowerState | null;
}

export interface Verdict {
  verdict: 'READY' | 'RELOAD';
  /** Why RELOAD (null for READY). */
  reason: string | null;
  /** The power state, when a driver answered. */
  power: PowerState | null;
}

/** The verdict for one node. */
export function nodeVerdict({ node, now, timeout, runningVnfs = null, bootImage = null, currentImage = null, power = null }: VerdictInput): Verdict {
  const reload = (reason: string): Verdict => ({ verdict: 'RELOAD', reason, power });
  if (power === 'off') return reload('powered off');
  if (!node.enabled) return reload('disabled');
  if (!node.vnfs) return reload('no vnfs assigned');
  if (node.lastcontact === null) return reload('never seen');
  if (node.state !== 'ready') return reload(`in state ${node.state ?? '(none)'}, not ready`);
  const age = (now - node.lastcontact) / 1000;
  if (age > timeout) return reload(`no contact for ${formatAge(age)} (node.timeout ${timeout}s)`);
  if (runningVnfs && runningVnfs !== node.vnfs) return reload(`running vnfs ${runningVnfs}, assigned ${node.vnfs}`);
  if (bootImage && currentImage && bootImage !== currentImage) {
    return reload(`image changed since boot (booted ${bootImage.slice(0, 12)}.., current ${currentImage.slice(0, 12)}..)`);
  }
  return { verdict: 'READY', reason: null, power };
}

/**
 * The VNFS a node booted, as its timeline shows it: the last image it fetched over HTTP under
 * `vnfs/<NAME>/`. Null when the timeline does not tell (the verdict then does not judge it).
 */
export function runningVnfsFromTimeline(events: ReadonlyArray<{ source: string; stage: string; ok: boolean }>): string | null {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (e.source !== 'http' || !e.ok) continue;
    const m = /^http \/?(?:[\w.-]+\/)?vnfs\/([^/\s]+)\//.exec(e.stage);
    if (m) return m[1]!;
  }
  return null;
}

/** `42s`, `7m`, `3h`, `2d`. */
export function formatAge(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86400)}d`;
}

/** One column for a table: `READY`, or `RELOAD (never seen)`, with `[on]` when the power is known. */
export function formatVerdict(v: Verdict): string {
  const text = v.verdict === 'READY' ? 'READY' : `RELOAD (${v.reason})`;
  return v.power ? `${text} [power ${v.power}]` : text;
}
