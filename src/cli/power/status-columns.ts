/**
 * The columns the power part adds to `provisiond node status`: VCL's READY/RELOAD verdict with its
 * reason, and the power state for nodes that have a power driver. Power is asked once per node and
 * command (both columns share the answer), within `power.concurrency` and `power.timeout`.
 */
import type { Config } from '../../config/schema.js';
import type { RegistryStore, ResolvedNode } from '../../registry/types.js';
import { hasPowerDriver } from '../../power/settings.js';
import type { PowerState } from '../../power/types.js';
import { formatVerdict } from '../../power/verdict.js';
import { verdictOf } from '../../nodes/verdict.js';
import { errorMessage } from '../../util/errors.js';
import { currentImageSha } from '../../vnfs/index.js';
import { driverFor } from './common.js';

interface Ctx {
  config: Config;
  registry: RegistryStore;
  now: number;
}

interface Column {
  header: string;
  key: string;
  value(node: ResolvedNode, ctx: Ctx): Promise<string>;
}

type PowerAnswer = { state: PowerState | null; error: string | null };
const answers = new WeakMap<object, Map<string, Promise<PowerAnswer>>>();
const slots = new WeakMap<object, { free: number; queue: Array<() => void> }>();

/** The node's power state, asked at most once per status command. */
function powerOf(node: ResolvedNode, ctx: Ctx): Promise<PowerAnswer> {
  if (!hasPowerDriver(node.attrs)) return Promise.resolve({ state: null, error: null });
  let byNode = answers.get(ctx);
  if (!byNode) answers.set(ctx, (byNode = new Map()));
  let p = byNode.get(node.name);
  if (!p) {
    p = limited(ctx, async () => {
      try {
        return { state: await driverFor(node, ctx.config).status({ signal: AbortSignal.timeout(ctx.config.power.timeout * 1000) }), error: null };
      } catch (err) {
        return { state: 'unknown' as const, error: errorMessage(err) };
      }
    });
    byNode.set(node.name, p);
  }
  return p;
}

async function limited<T>(ctx: Ctx, fn: () => Promise<T>): Promise<T> {
  let s = slots.get(ctx);
  if (!s) slots.set(ctx, (s = { free: ctx.config.power.concurrency, queue: [] }));
  const slot = s;
  if (slot.free === 0) await new Promise<void>((r) => slot.queue.push(r));
  else slot.free--;
  try {
    return await fn();
  } finally {
    const next = slot.queue.shift();
    if (next) next();
    else slot.free++;
  }
}

const images = new WeakMap<object, Map<string, Promise<string | null>>>();

/** The sha256 of a VNFS's current image, read once per status command. */
function currentImageOf(vnfs: string, ctx: Ctx): Promise<string | null> {
  let byVnfs = images.get(ctx);
  if (!byVnfs) images.set(ctx, (byVnfs = new Map()));
  let p = byVnfs.get(vnfs);
  if (!p) byVnfs.set(vnfs, (p = currentImageSha(ctx.config.statedir, vnfs)));
  return p;
}

export const verdictColumn: Column = {
  header: 'VERDICT',
  key: 'verdict',
  async value(node, ctx) {
    const power = await powerOf(node, ctx);
    const v = await verdictOf(node, ctx.registry, ctx.config, { now: ctx.now, power: power.state, currentImage: (vnfs) => currentImageOf(vnfs, ctx) });
    return formatVerdict({ ...v, power: null });
  },
};

export const powerColumn: Column = {
  header: 'POWER',
  key: 'power',
  async value(node, ctx) {
    const p = await powerOf(node, ctx);
    if (p.state === null) return '-';
    return p.error ? `unknown (${p.error})` : p.state;
  },
};
