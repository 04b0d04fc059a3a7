/**
 * A node's VCL verdict (READY/RELOAD with the reason) and its power state now, from what the
 * registry, its timeline, its VNFS's image and (when asked) its power driver say. `node status` and
 * the API's `/nodes/{n}/verdict` and `/nodes/{n}/power` answer from here.
 */
import type { Config } from '../config/schema.js';
import { createDriver } from '../power/index.js';
import { hasPowerDriver, powerSettings } from '../power/settings.js';
import type { PowerState } from '../power/types.js';
import { nodeVerdict, runningVnfsFromTimeline, type Verdict } from '../power/verdict.js';
import type { RegistryStore, ResolvedNode } from '../registry/types.js';
import { errorMessage } from '../util/errors.js';
import { currentImageSha } from '../vnfs/index.js';

/** How far back the timeline is read to tell which VNFS the node runs. */
const TIMELINE_WINDOW_MS = 7 * 86400_000;

export interface VerdictOptions {
  now?: number;
  /** The power state, when the caller asked the driver (`off` is a RELOAD of its own). */
  power?: PowerState | null;
  /** The current image of a VNFS; a caller judging many nodes passes a cached one. */
  currentImage?: (vnfs: string) => Promise<string | null>;
}

/** The verdict for one resolved node. */
export async function verdictOf(node: ResolvedNode, registry: RegistryStore, config: Config, o: VerdictOptions = {}): Promise<Verdict> {
  const now = o.now ?? Date.now();
  const events = await registry.listEvents(node.nodeid, { since: now - TIMELINE_WINDOW_MS }).catch(() => []);
  const runningVnfs = node.bootVnfs ?? runningVnfsFromTimeline(events);
  // The image comparison holds only for the VNFS it booted: another VNFS is a RELOAD of its own.
  const image = o.currentImage ?? ((v: string) => currentImageSha(config.statedir, v));
  const currentImage = node.bootImage && runningVnfs === node.vnfs ? await image(node.vnfs) : null;
  const power = o.power === 'unknown' ? null : (o.power ?? null);
  return nodeVerdict({ node, now, timeout: config.node.timeout, runningVnfs, bootImage: node.bootImage, currentImage, power });
}

/** What the node's power driver says now: null state when it has no driver; `unknown` with the error when it failed. */
export interface PowerAnswer {
  driver: string | null;
  state: PowerState | null;
  error: string | null;
}

/** Asks the node's driver for the power state, within `power.timeout`. */
export async function powerStatus(node: ResolvedNode, config: Config, signal?: AbortSignal): Promise<PowerAnswer> {
  if (!hasPowerDriver(node.attrs)) return { driver: null, state: null, error: null };
  let driver: string | null = null;
  try {
    const settings = powerSettings(node.name, node.attrs, config.statedir);
    driver = settings.driver;
    const timeout = AbortSignal.timeout(config.power.timeout * 1000);
    const state = await createDriver({ name: node.name, nodeid: node.nodeid, settings }).status({ signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
    return { driver, state, error: null };
  } catch (err) {
    return { driver, state: 'unknown', error: errorMessage(err) };
  }
}
