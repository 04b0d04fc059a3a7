/**
 * GET /events: Server-Sent Events of node state changes, timeline steps and task progress, as they
 * happen. `node` (patterns as in the CLI: `n00[01-16]`, `n*`, a MAC) and `kind` filter; a client
 * that reconnects with `Last-Event-ID` gets what it missed from the hub's buffer, or a `gap` event
 * when that is gone. A client that cannot keep up is disconnected (it resumes from its last id)
 * rather than let the daemon buffer without bound.
 */
import { z } from 'zod';
import { parseMac } from '../../util/mac.js';
import { expandRanges, globToRegExp, isGlob } from '../../util/patterns.js';
import { EVENT_KINDS, type EventKind, type HubEvent } from '../events.js';
import { HANDLED, defineOperation } from '../operation.js';
import { epochMs, limitParam } from '../schemas.js';

/** Bytes a slow subscriber may have waiting before it is cut off. */
const MAX_PENDING = 8 * 1024 * 1024;
const HEARTBEAT_MS = 15_000;

function nodeMatcher(patterns: string | undefined): (e: HubEvent) => boolean {
  if (!patterns) return () => true;
  const exact = new Set<string>();
  const globs: RegExp[] = [];
  for (const p of patterns.split(',').filter(Boolean)) {
    for (const x of expandRanges(p)) {
      if (isGlob(x)) globs.push(globToRegExp(x, 'i'));
      else {
        // A node is named by its name or its MAC in any notation (52-54-00-..., 5254.00...), as in the CLI.
        exact.add(x.toUpperCase());
        const mac = parseMac(x);
        if (mac) exact.add(mac.toUpperCase());
      }
    }
  }
  const one = (s: unknown) => typeof s === 'string' && (exact.has(s.toUpperCase()) || globs.some((g) => g.test(s)));
  return (e) => one(e.node) || one(e.data.nodeid) || (e.kind === 'task' && Array.isArray(e.data.nodes) && (e.data.nodes as unknown[]).some(one));
}

function frame(e: HubEvent): string {
  return `id: ${e.id}\nevent: ${e.kind}\ndata: ${JSON.stringify({ kind: e.kind, node: e.node, time: e.time, ...e.data })}\n\n`;
}

const kindsParam = z
  .string()
  .optional()
  .refine((s) => s === undefined || s.split(',').every((k) => (EVENT_KINDS as string[]).includes(k)), { message: `kinds are ${EVENT_KINDS.join(', ')}` })
  .meta({ description: `comma-separated: ${EVENT_KINDS.join(', ')}` });

const recentEvent = z
  .strictObject({ id: z.string(), kind: z.enum(EVENT_KINDS as [EventKind, ...EventKind[]]), node: z.string().nullable(), time: epochMs, data: z.record(z.string(), z.unknown()) })
  .meta({ id: 'HubEvent', description: 'an event of the stream, as its `data` says it, with its id' });

export const eventOperations = [
  defineOperation({
    id: 'events.recent',
    method: 'get',
    path: '/events/recent',
    tag: 'events',
    summary: 'The newest events still in the stream\'s buffer (since the daemon started), newest first, as JSON',
    description:
      'What a page shows before it follows the stream: e.g. `?kind=timeline&failed=true` for the latest failed boot steps. `last` is the id of the newest event in the buffer: open the stream with `lastEventId=` it to miss nothing in between.',
    access: 'viewer',
    query: z.strictObject({
      node: z.string().optional().meta({ description: 'comma-separated node patterns or hardware addresses' }),
      kind: kindsParam,
      failed: z.enum(['true', 'false']).optional().meta({ description: 'true: only failed steps (timeline events with ok false)' }),
      limit: limitParam(50, 1000),
    }),
    response: { status: 200, description: 'the events', schema: z.strictObject({ items: z.array(recentEvent), last: z.string().nullable() }).meta({ id: 'RecentEvents' }) },
    handler: async ({ api, query }) => {
      const kinds = new Set<EventKind>((query.kind?.split(',') as EventKind[] | undefined) ?? EVENT_KINDS);
      const matchNode = nodeMatcher(query.node);
      const failed = query.failed === 'true';
      const last = api.events.lastSeq > 0 ? `${api.events.run}-${api.events.lastSeq}` : null;
      const items = api.events
        .recent((e) => kinds.has(e.kind) && (query.node === undefined || matchNode(e)) && (!failed || e.data.ok === false), query.limit)
        .map((e) => ({ id: e.id, kind: e.kind, node: e.node, time: e.time, data: e.data }));
      return { items, last };
    },
  }),
  defineOperation({
    id: 'events.stream',
    method: 'get',
    path: '/events',
    tag: 'events',
    summary: 'Live events (text/event-stream): node state changes, timeline steps, task progress',
    description:
      'Each event has an `id`; reconnect with `Last-Event-ID` (or `?lastEventId=`) to receive what was missed. An event `gap` says events were lost (daemon restarted, or too far behind): re-read the state. Comments (`: keep-alive`) every 15 s.',
    access: 'viewer',
    query: z.strictObject({
      node: z.string().optional().meta({ description: 'comma-separated node patterns or hardware addresses' }),
      kind: kindsParam,
      lastEventId: z.string().optional().meta({ description: 'as the Last-Event-ID header' }),
    }),
    response: { status: 200, description: 'the stream', contentType: 'text/event-stream' },
    handler: async ({ api, query, req, res, signal }) => {
      const kinds = new Set<EventKind>((query.kind?.split(',') as EventKind[] | undefined) ?? EVENT_KINDS);
      const matchNode = nodeMatcher(query.node);
      const wanted = (e: HubEvent) => kinds.has(e.kind) && (query.node === undefined || matchNode(e));
      res.status(200);
      res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
      res.setHeader('Cache-Control', 'no-store');
      res.setHeader('X-Accel-Buffering', 'no');
      res.flushHeaders();
      req.socket.setNoDelay(true);
      let closed = false;
      const write = (text: string) => {
        if (closed) return;
        res.write(text);
        if (res.writableLength > MAX_PENDING) {
          closed = true;
          api.log.warn({ subscriber: req.socket.remoteAddress }, 'api events: a subscriber fell too far behind and was disconnected (it can resume with Last-Event-ID)');
          res.destroy();
        }
      };
      // Subscribe first, then replay: nothing published in between is lost (the replay ends where live begins).
      const live: HubEvent[] = [];
      let replaying = true;
      const off = api.events.subscribe((e) => {
        if (!wanted(e)) return;
        if (replaying) live.push(e);
        else write(frame(e));
      });
      const lastId = (req.headers['last-event-id'] as string | undefined) ?? query.lastEventId;
      const { events, gap } = api.events.since(lastId);
      write(`retry: 2000\n: provisiond events, run ${api.events.run}\n\n`);
      if (gap) write(`event: gap\ndata: ${JSON.stringify({ message: 'events were lost since your Last-Event-ID (daemon restart or buffer overrun): re-read the state' })}\n\n`);
      let last = 0;
      for (const e of events) {
        last = e.seq;
        if (wanted(e)) write(frame(e));
      }
      for (const e of live) if (e.seq > last) write(frame(e));
      replaying = false;
      const beat = setInterval(() => write(': keep-alive\n\n'), HEARTBEAT_MS);
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
      closed = true;
      clearInterval(beat);
      off();
      return HANDLED;
    },
  }),
];
