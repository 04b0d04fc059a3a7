/**
 * Boot durations from what the servers record on nodes' timelines: a boot begins at a node's first
 * DHCP offer and ends at its first `ready` check-in. In between, each milestone closes a phase:
 *
 *   dhcp         first offer -> first ack (DORA)
 *   loader       -> the iPXE script is fetched (TFTP of the loader, iPXE's own DHCP)
 *   stage1       -> `GET /nodescripts/init` (kernel and initramfs over HTTP, the stage-1 boots)
 *   nodescripts  -> the init script is sent
 *   image        -> the first ready check-in (getfile of the image, switch into it)
 *
 * A milestone that does not happen (a node booted without iPXE) merges its phase into the next.
 * Nodes are tracked by hwaddr only in memory, bounded in number and age, never as metric labels.
 */
import type { TimelineEvent } from '../../registry/types.js';

export const BOOT_PHASES = ['dhcp', 'loader', 'stage1', 'nodescripts', 'image'] as const;
export type BootPhase = (typeof BOOT_PHASES)[number];

/** A boot not finished after this long is forgotten (the node was switched off, or booted elsewhere). */
const MAX_AGE_MS = 2 * 3600_000;
/** Boots followed at once; the oldest are forgotten past it (a storm far larger than any cluster). */
const MAX_TRACKED = 100_000;

interface Boot {
  began: number;
  /** When the last milestone passed, and the index of the phase it closed (-1: none yet). */
  at: number;
  phase: number;
}

export interface BootObservers {
  boot(seconds: number): void;
  phase(phase: BootPhase, seconds: number): void;
}

export class BootTracker {
  readonly #boots = new Map<string, Boot>();

  constructor(private readonly observe: BootObservers) {}

  /** Boots being followed now. */
  get tracked(): number {
    return this.#boots.size;
  }

  /** A step recorded on a node's timeline. */
  event(e: Pick<TimelineEvent, 'nodeid' | 'source' | 'stage' | 'ok' | 'time'>): void {
    // A nodescript answer that reports a failed script still ends its phase; other failed steps do not.
    if (!e.ok && !e.stage.endsWith(' sent')) return;
    if (e.source === 'dhcp') {
      if (e.stage === 'offer' || e.stage === 'proxy-offer') this.#begin(e.nodeid, e.time);
      else if (e.stage === 'ack' || e.stage === 'proxy-ack') this.#milestone(e.nodeid, 0, e.time);
    } else if (e.source === 'http' && e.stage === 'ipxe-script') {
      this.#milestone(e.nodeid, 1, e.time);
    } else if ((e.source === 'http' || e.source === 'perceus') && e.stage === 'nodescript init') {
      this.#milestone(e.nodeid, 2, e.time);
    } else if ((e.source === 'http' || e.source === 'perceus') && e.stage === 'nodescript init sent') {
      this.#milestone(e.nodeid, 3, e.time);
    }
  }

  /** A node asked for its nodescripts in `state`: the first `ready` ends its boot. */
  contact(nodeid: string, state: string, time = Date.now()): void {
    if (state !== 'ready') return;
    const b = this.#boots.get(nodeid);
    if (!b) return;
    this.#milestone(nodeid, 4, time);
    this.#boots.delete(nodeid);
    this.observe.boot(Math.max(0, time - b.began) / 1000);
  }

  #begin(nodeid: string, time: number): void {
    const b = this.#boots.get(nodeid);
    // iPXE and the stage-1 ask DHCP again during the same boot: only a forgotten or stale one restarts.
    if (b && time - b.began < MAX_AGE_MS) return;
    if (b) this.#boots.delete(nodeid);
    this.#prune(time);
    this.#boots.set(nodeid, { began: time, at: time, phase: -1 });
  }

  #milestone(nodeid: string, phase: number, time: number): void {
    const b = this.#boots.get(nodeid);
    if (!b || phase <= b.phase) return;
    this.observe.phase(BOOT_PHASES[phase]!, Math.max(0, time - b.at) / 1000);
    b.at = time;
    b.phase = phase;
  }

  /** Forgets boots too old to finish, and the oldest beyond the bound (the map keeps insertion order). */
  #prune(now: number): void {
    for (const [nodeid, b] of this.#boots) {
      if (this.#boots.size < MAX_TRACKED && now - b.began < MAX_AGE_MS) break;
      this.#boots.delete(nodeid);
    }
  }
}
