/**
 * What the node routes share: finding the node a path names (name or hardware address), presenting
 * nodes as `node list --json` does, and turning the CLI's validation errors into 422s naming the
 * field.
 */
import type { Config } from '../config/schema.js';
import { findNode } from '../nodes/select.js';
import { nodeView, type NodeView } from '../nodes/view.js';
import { verdictOf } from '../nodes/verdict.js';
import type { NodeRecord, ResolvedNode } from '../registry/types.js';
import { UsageError } from '../util/errors.js';
import { currentImages } from '../vnfs/index.js';
import type { ApiContext } from './context.js';
import { ApiError, toApiError } from './errors.js';

export { findNode };

/**
 * The node views of `nodes`, in their order, with the current image of each VNFS looked up once. A page
 * of 5,000 nodes must not hold the event loop DHCP shares: the work is paced (src/util/pacer.ts).
 */
export async function nodeViews(api: Pick<ApiContext, 'registry' | 'pacer'>, config: Config, nodes: readonly NodeRecord[], now = Date.now()): Promise<NodeView[]> {
  const resolved: ResolvedNode[] = [];
  for (const node of nodes) {
    await api.pacer.pace();
    resolved.push(await api.registry.resolve(node, config.defaults));
  }
  const images = await currentImages(config.statedir, resolved.map((r) => r.vnfs).filter(Boolean));
  const views: NodeView[] = [];
  for (const r of resolved) {
    await api.pacer.pace();
    views.push(nodeView(r, config, now, images));
  }
  return views;
}

/** One node with its sources, lease address and verdict (GET /nodes/{node}). */
export async function nodeDetail(api: ApiContext, rec: NodeRecord) {
  const config = api.config();
  const now = Date.now();
  const r = await api.registry.resolve(rec, config.defaults);
  const images = await currentImages(config.statedir, r.vnfs ? [r.vnfs] : []);
  const lease = await api.registry.getLease(r.nodeid);
  const v = await verdictOf(r, api.registry, config, { now, currentImage: async (vnfs) => images.get(vnfs) ?? null });
  return { ...nodeView(r, config, now, images), sources: r.sources, leaseAddress: lease?.address ?? null, verdict: { verdict: v.verdict, reason: v.reason } };
}

/** The CLI's validation error (UsageError, or any 422 without a field) as a 422 naming `field`, message unchanged. */
function fieldError(field: string, err: unknown): unknown {
  if (err instanceof UsageError) return new ApiError(422, 'invalid', err.message, field);
  const e = toApiError(err);
  if (e.status === 422 && e.field === undefined) return new ApiError(422, e.code, e.message, field);
  return err;
}

/** Runs a validation of the CLI; what it refuses is answered 422 naming `field`. */
export function asField<T>(field: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fieldError(field, err);
  }
}

/** asField for an asynchronous step. */
export async function asFieldAsync<T>(field: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw fieldError(field, err);
  }
}
