/**
 * The capture task (Apache VCL's `capture`): a new VNFS from a running node. Phases of its node:
 * `request` (offered to the node's ready agent, which hears of it on its long-poll), `upload` (its
 * root file system arriving; the message `upload: N bytes received` is updated as bytes arrive, at
 * most twice a second), `import` (the checked capsule renamed into place), `image` (its node image
 * built), then success. Any failure, a cut upload among them, ends the task `failure` with the
 * reason and leaves no VNFS and no staging folder. Each step goes in the node's timeline (`capture`).
 */
import type { Readable } from 'node:stream';
import { hostname } from 'node:os';
import { buildImage } from '../../vnfs/index.js';
import { receiveCapture, removeStaging } from '../../vnfs/capture.js';
import { errorMessage, ProvisiondError } from '../../util/errors.js';
import type { TaskNode } from '../../registry/types.js';
import { newUploadToken } from '../node-actions.js';
import type { TaskParams } from '../params.js';
import { addMessage } from '../record.js';
import { endNode, type RunContext } from './context.js';
import { size } from './vnfs-image.js';

type CaptureParams = Extract<TaskParams, { action: 'capture' }>;

/** Seconds a capture may take from its start to its upload's end, unless `timeout` says otherwise. */
export const CAPTURE_TIMEOUT = 3600;

/** The message of a capture's upload progress (updated in place as bytes arrive). */
export const UPLOAD_PROGRESS = /^upload: (\d+) bytes received/;

export async function runCapture(ctx: RunContext<CaptureParams>): Promise<void> {
  const { vnfs, exclude } = ctx.params;
  const tn = ctx.task.nodes[0]!;
  const rec = await ctx.registry.getNode(tn.node);
  if (!rec) return endNode(ctx, tn, 'failure', `node ${tn.node} is no longer registered`);
  if (!ctx.actions) return endNode(ctx, tn, 'failure', 'a capture needs the daemon: its node-facing HTTP server receives the upload');
  const board = ctx.actions;
  const note = (stage: string, msg: string, ok = true): Promise<void> =>
    Promise.resolve(ctx.timeline({ time: Date.now(), nodeid: rec.nodeid, source: 'admin', stage, msg, ok })).catch((err: unknown) => ctx.log.warn({ err: String(err) }, 'recording the capture step failed'));
  const phase = async (p: string, message: string): Promise<void> => {
    tn.phase = p;
    addMessage(ctx.task, tn, message);
    await ctx.changed();
  };

  tn.status = 'running';
  const timeoutS = ctx.params.timeout ?? CAPTURE_TIMEOUT;
  const deadline = Date.now() + timeoutS * 1000;
  await phase('request', `request: waiting for the ready agent of ${tn.node} to take the capture`);
  await note('capture', `requested as vnfs ${vnfs} (task ${ctx.task.id})`);

  let finished!: (r: { ok: true; text: string } | { ok: false; error: string }) => void;
  const outcome = new Promise<{ ok: true; text: string } | { ok: false; error: string }>((resolve) => (finished = resolve));
  let body: Readable | null = null;
  /** A timeout or cancel: an upload being read is cut (its own failure ends the task), else the task ends. */
  const stop = (error: string): void => {
    if (body) body.destroy(new ProvisiondError(error));
    else finished({ ok: false, error });
  };
  const withdraw = board.offer(rec.nodeid, {
    kind: 'capture',
    task: ctx.task.id,
    vnfs,
    exclude,
    token: newUploadToken(),
    expires: deadline,
    fail: (reason) => stop(`the node reports: ${reason}`),
    onTaken: () => void phase('upload', 'upload: the agent took the capture; waiting for its upload'),
    receive: async (upload: Readable, length: number | null) => {
      if (body) throw new ProvisiondError('an upload is already running for this capture');
      body = upload;
      try {
        const text = await receive(ctx, tn, rec.nodeid, upload, length, phase);
        finished({ ok: true, text });
        return text;
      } catch (err) {
        finished({ ok: false, error: errorMessage(err) });
        throw err;
      }
    },
  });
  const timer = setTimeout(() => stop(`timed out after ${timeoutS}s in phase ${tn.phase} (${tn.phase === 'request' ? "the node's ready agent did not take it: is it running, and new enough to long-poll for actions?" : 'no complete upload'})`), Math.max(0, deadline - Date.now()));
  const onAbort = (): void => stop(ctx.cancelledBy() ? `cancelled by ${ctx.cancelledBy()}` : 'the task runner closed');
  ctx.signal.addEventListener('abort', onAbort);
  const r = await outcome;
  clearTimeout(timer);
  ctx.signal.removeEventListener('abort', onAbort);
  withdraw();
  if (!r.ok) {
    // An upload still being read ends with its request; its staging folder goes with it.
    await removeStaging(ctx.config.statedir, ctx.task.id);
    await note('capture', `failed: ${r.error}`, false);
    return endNode(ctx, tn, 'failure', `${tn.phase ?? 'capture'}: ${r.error}`);
  }
  await phase('image', `image: building the image of vnfs ${vnfs}`);
  try {
    const img = await buildImage(ctx.config.statedir, vnfs, ctx.log);
    await note('capture', `vnfs ${vnfs} ready: image ${size(img.bytes)}`);
    endNode(ctx, tn, 'success', `captured as vnfs ${vnfs}: ${r.text}; image ${img.path} ${size(img.bytes)} sha256 ${img.sha256}`);
  } catch (err) {
    // The VNFS is whole; its image is built again when a node asks for it.
    await note('capture', `vnfs ${vnfs} captured, its image failed: ${errorMessage(err)}`, false);
    endNode(ctx, tn, 'failure', `image: vnfs ${vnfs} was captured, but building its image failed: ${errorMessage(err)}`);
  }
}

/** Reads the upload into the staging folder and puts the capsule in place; returns what the node is told. */
async function receive(ctx: RunContext<CaptureParams>, tn: TaskNode, nodeid: string, body: Readable, length: number | null, phase: (p: string, m: string) => Promise<void>): Promise<string> {
  const { vnfs, exclude } = ctx.params;
  const began = Date.now();
  tn.phase = 'upload';
  addMessage(ctx.task, tn, 'upload: 0 bytes received');
  const progress = tn.messages.at(-1)!;
  await ctx.changed();
  let marked = 0;
  const onBytes = (n: number): void => {
    if (Date.now() - marked < 500) return;
    marked = Date.now();
    progress.message = `upload: ${n} bytes received${length !== null ? ` of ${length}` : ''}`;
    progress.ts = marked;
    tn.progressAt = marked;
    ctx.task.progressAt = marked;
    void ctx.changed();
  };
  const r = await receiveCapture(ctx.config.statedir, vnfs, body, {
    id: ctx.task.id,
    exclude,
    description: `captured from node ${tn.node} on ${new Date(began).toISOString()} by ${hostname()} (task ${ctx.task.id})`,
    onBytes,
  });
  progress.message = `upload: ${r.bytes} bytes received, complete`;
  const secs = Math.max(0.001, (Date.now() - began) / 1000);
  await phase('import', `import: vnfs ${vnfs}: ${r.entries} entries from ${size(r.bytes)} in ${secs.toFixed(1)} s`);
  void Promise.resolve(ctx.timeline({ time: Date.now(), nodeid, source: 'admin', stage: 'capture', msg: `upload done: ${size(r.bytes)} in ${secs.toFixed(1)} s, ${r.entries} entries`, ok: true })).catch(() => {});
  return `vnfs ${vnfs}: ${r.entries} entries, ${size(r.bytes)}`;
}
