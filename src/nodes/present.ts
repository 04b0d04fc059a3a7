/**
 * How a node's values are shown to people and programs alike (CLI and API): contact ages, the
 * node.timeout judgement, and secrets (any attribute whose name ends in `password`) masked.
 */

/** True for attribute names that hold a secret (`power.password`, `bmcPassword`). */
export function isSecret(key: string): boolean {
  return /password$/i.test(key);
}

/** The value as it may be printed. */
export function shown(key: string, value: string): string {
  return isSecret(key) ? '****' : value;
}

/** Attributes with secrets masked (for --json). */
export function maskedAttrs(attrs: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, shown(k, v)]));
}

/** `12s ago`, `5m ago`, `3h ago`, `2d ago`. */
export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

/** The last-contact column: `never`, `12s ago`, or `timed out (3h ago)` past `node.timeout` seconds. */
export function contactAge(lastcontact: number | null, timeoutSeconds: number, now = Date.now()): string {
  if (lastcontact === null) return 'never';
  const ms = now - lastcontact;
  return ms > timeoutSeconds * 1000 ? `timed out (${age(ms)})` : age(ms);
}

/** True when the node has not been heard from within `node.timeout`. */
export function timedOut(lastcontact: number | null, timeoutSeconds: number, now = Date.now()): boolean {
  return lastcontact !== null && now - lastcontact > timeoutSeconds * 1000;
}
