/**
 * Nodes by state and by verdict for the metrics, computed at scrape time from the registry's memory
 * index and kept a few seconds, so that scrapers polling every second (or several at once) cost one
 * scan. The scan gives the event loop a turn every few hundred nodes: 10,000 nodes never hold it long.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../../config/schema.js';
import { nodeVerdict } from '../../power/verdict.js';
import type { RegistryStore } from '../../registry/types.js';
import { currentImageSha } from '../../vnfs/index.js';

/** How long one scan answers scrapes. */
const CACHE_MS = 5_000;
/** Nodes judged between two turns of the event loop. */
const SLICE = 500;
/** At most this many state names as labels (the folders of nodescripts/); the rest count as `other`. */
const MAX_STATES = 32;

/** A RELOAD reason as a label: the verdict's reason without what varies (ages, names, checksums). */
export function reasonLabel(reason: string | null): string {
  if (reason === null) return '';
  if (reason === 'powered off') return 'powered-off';
  if (reason === 'disabled') return 'disabled';
  if (reason === 'no vnfs assigned') return 'no-vnfs';
  if (reason === 'never seen') return 'never-seen';
  if (reason.startsWith('in state')) return 'not-ready';
  if (reason.startsWith('no contact')) return 'timed-out';
  if (reason.startsWith('running vnfs')) return 'other-vnfs';
  if (reason.startsWith('image changed')) return 'image-changed';
  return 'other';
}

/** The provisionary states worth a label: init, ready and the folders of `<statedir>/nodescripts/`. */
async function knownStates(statedir: string): Promise<Set<string>> {
  const states = new Set(['init', 'ready']);
  const entries = await readdir(join(statedir, 'nodescripts'), { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (states.size >= MAX_STATES) break;
    if (e.isDirectory() && /^\w+$/.test(e.name) && e.name !== 'modules') states.add(e.name);
  }
  return states;
}

const turn = () => new Promise<void>((r) => setImmediate(r));

export interface NodeCounts {
  states: Map<string, number>;
  /** Keyed `VERDICT reason` (reason empty for READY). */
  verdicts: Map<string, number>;
}

/** Counts every node; `now` for the verdict's contact age. */
export async function countNodes(registry: RegistryStore, config: Config, now = Date.now()): Promise<NodeCounts> {
  const nodes = await registry.listNodes();
  const known = await knownStates(config.statedir);
  const images = new Map<string, Promise<string | null>>();
  const image = (vnfs: string) => {
    let p = images.get(vnfs);
    if (!p) images.set(vnfs, (p = currentImageSha(config.statedir, vnfs)));
    return p;
  };
  const states = new Map<string, number>();
  const verdicts = new Map<string, number>([['READY ', 0]]);
  for (let i = 0; i < nodes.length; i++) {
    if (i > 0 && i % SLICE === 0) await turn();
    const node = await registry.resolve(nodes[i]!, config.defaults);
    const state = node.state === null ? 'none' : known.has(node.state) ? node.state : 'other';
    states.set(state, (states.get(state) ?? 0) + 1);
    // The VNFS it runs as the registry recorded it (no timeline read per node: that is `node status`'s job).
    const runningVnfs = node.bootVnfs ?? null;
    const currentImage = node.bootImage && runningVnfs === node.vnfs ? await image(node.vnfs) : null;
    const v = nodeVerdict({ node, now, timeout: config.node.timeout, runningVnfs, bootImage: node.bootImage, currentImage });
    const key = `${v.verdict} ${reasonLabel(v.reason)}`;
    verdicts.set(key, (verdicts.get(key) ?? 0) + 1);
  }
  return { states, verdicts };
}

/** countNodes behind a short cache; concurrent scrapes share one scan. */
export function cachedNodeCounts(registry: RegistryStore, config: () => Config, ttlMs = CACHE_MS): () => Promise<NodeCounts> {
  let last: { at: number; value: Promise<NodeCounts> } | null = null;
  return () => {
    const now = Date.now();
    if (last && now - last.at < ttlMs) return last.value;
    const value = countNodes(registry, config(), now);
    last = { at: now, value };
    // A failed scan is not kept: the next scrape tries again.
    value.catch(() => {
      if (last?.value === value) last = null;
    });
    return value;
  };
}
