/**
 * How the node and group commands print: an aligned table on a terminal, plain tab-separated lines
 * (no header) when piped, so that `provisiond node list | awk '{print $1}'` works. Secrets (any
 * attribute whose name ends in `password`) are never printed.
 */

/** Writes rows as a table (terminal) or tab-separated lines (pipe). */
export function printTable(out: NodeJS.WritableStream & { isTTY?: boolean }, headers: string[], rows: string[][]): void {
  if (out.isTTY !== true) {
    // An empty cell would shift awk's columns: print `-` instead.
    for (const r of rows) out.write(`${r.map((c) => c || '-').join('\t')}\n`);
    return;
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  out.write(`${line(headers)}\n`);
  for (const r of rows) out.write(`${line(r)}\n`);
}

export { isSecret, shown, maskedAttrs, age, contactAge, timedOut } from '../../nodes/present.js';

export const yesNo = (b: boolean): string => (b ? 'yes' : 'no');

export function printJson(out: NodeJS.WritableStream, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}
