/**
 * The boot timeline recorder the daemon hands every service: one call per step a server sees
 * (DHCP offer, TFTP/HTTP transfer, nodescript) or a node reports. Recording never throws and never
 * delays a request: the registry batches the writes, a failure is logged.
 */
import type { Logger } from '../log/logger.js';
import type { RegistryStore, TimelineEvent } from '../registry/types.js';

/** At most one warning per this many ms about events the registry did not record. */
const LOST_LOG_MS = 10_000;

export type TimelineRecorder = (event: Omit<TimelineEvent, 'time'> & { time?: number }) => void;

/** `onEvent` sees every event recorded (the API's live event stream). */
export function createTimelineRecorder(registry: RegistryStore, log: Logger, onEvent?: (e: TimelineEvent) => void): TimelineRecorder {
  // pino's loggers say whether a level is on; building the debug line's fields for every DHCP
  // packet of a boot storm only to drop them costs more than recording the event.
  const debugOn = typeof (log as { isLevelEnabled?: unknown }).isLevelEnabled === 'function' ? () => (log as unknown as { isLevelEnabled(l: string): boolean }).isLevelEnabled('debug') : () => true;
  // Events the registry refused (closed, failing): said once in a while with the count, never once
  // per event (a boot storm records thousands a second), and one handler for all of them.
  let lost = 0;
  let loggedAt = -Infinity;
  const notRecorded = (err: unknown): void => {
    lost++;
    const now = Date.now();
    if (now - loggedAt < LOST_LOG_MS) return;
    loggedAt = now;
    log.warn({ err: String(err), lost }, 'timeline: events not recorded');
  };
  return (event) => {
    const full: TimelineEvent = { time: event.time ?? Date.now(), nodeid: event.nodeid, source: event.source, stage: event.stage, msg: event.msg, ok: event.ok, addr: event.addr };
    if (debugOn()) log.debug({ nodeid: full.nodeid, source: full.source, stage: full.stage, msg: full.msg, ok: full.ok }, 'timeline');
    onEvent?.(full);
    registry.addEvent(full).catch(notRecorded);
  };
}

/** `1.234 s` / `120 ms`, the way durations read in timeline messages. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** `512.0 MiB`, `4.0 KiB`, `17 B`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
