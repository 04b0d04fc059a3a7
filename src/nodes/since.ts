/** The start of a time window as admins give it: `90s`, `15m`, `2h`, `1d`, or a date. */
import { UsageError } from '../util/errors.js';

/** `90s`, `15m`, `2h`, `1d`, or an ISO date: the start of the window, in ms since the epoch. */
export function parseSince(text: string, now = Date.now()): number {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)$/.exec(text.trim());
  if (m) return now - Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2] as 's' | 'm' | 'h' | 'd'];
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new UsageError(`bad --since ${JSON.stringify(text)}: use 90s, 15m, 2h, 1d or a date`);
  return t;
}
