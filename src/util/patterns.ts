/**
 * Node-name patterns, as admins type them in Perceus, pdsh and xCAT:
 *
 * - bracket ranges `n00[01-16]`, `n[1-3,7]`, `rack[1-2]-n[01-04]`: expanded to every name (cartesian
 *   product of the brackets). A bound written with a leading zero (`01`) pads every number to the width
 *   of the wider bound; `[8-12]` gives `8 9 10 11 12`, `[08-12]` gives `08 09 10 11 12`.
 * - globs `n00*`, `n00?` matched against existing names (after range expansion, so `rack[1-2]-*` works).
 * - the auto-registration name pattern `n####`: prefix, a run of `#` (the zero-padded number), suffix.
 */
import { UsageError } from './errors.js';

/** Largest number of names one pattern may expand to (a typo like `[1-999999999]` must not hang the CLI). */
const MAX_EXPANSION = 1_000_000;

/** Expands the bracket ranges of a pattern. A pattern without brackets expands to itself. */
export function expandRanges(pattern: string): string[] {
  let results = [''];
  let i = 0;
  while (i < pattern.length) {
    const open = pattern.indexOf('[', i);
    const close = open < 0 ? -1 : pattern.indexOf(']', open);
    if (pattern.indexOf(']', i) >= 0 && (open < 0 || pattern.indexOf(']', i) < open)) {
      throw new UsageError(`pattern ${JSON.stringify(pattern)}: "]" without "["`);
    }
    if (open < 0) {
      results = results.map((r) => r + pattern.slice(i));
      break;
    }
    if (close < 0) throw new UsageError(`pattern ${JSON.stringify(pattern)}: "[" without "]"`);
    const literal = pattern.slice(i, open);
    const items = expandBracket(pattern, pattern.slice(open + 1, close));
    if (results.length * items.length > MAX_EXPANSION) {
      throw new UsageError(`pattern ${JSON.stringify(pattern)}: expands to more than ${MAX_EXPANSION} names`);
    }
    const next: string[] = [];
    for (const r of results) for (const item of items) next.push(r + literal + item);
    results = next;
    i = close + 1;
  }
  return results;
}

/** `1-3,7,09-11` -> the numbers as strings, padded as written. */
function expandBracket(pattern: string, body: string): string[] {
  const bad = (why: string): never => {
    throw new UsageError(`pattern ${JSON.stringify(pattern)}: [${body}]: ${why}`);
  };
  if (body === '') bad('empty range');
  const out: string[] = [];
  for (const part of body.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) bad(`${JSON.stringify(part)} is not a number or a range like 01-16`);
    const [, lo, hi = lo] = m!;
    const from = Number(lo);
    const to = Number(hi);
    if (to < from) bad(`range ${part} goes backwards`);
    if (to - from + 1 + out.length > MAX_EXPANSION) bad(`more than ${MAX_EXPANSION} numbers`);
    const padded = (lo!.length > 1 && lo!.startsWith('0')) || (hi!.length > 1 && hi!.startsWith('0'));
    const width = padded ? Math.max(lo!.length, hi!.length) : 0;
    for (let n = from; n <= to; n++) out.push(String(n).padStart(width, '0'));
  }
  return out;
}

/** True when the pattern has glob characters (`*`, `?`) and so matches against existing names. */
export function isGlob(pattern: string): boolean {
  return /[*?]/.test(pattern);
}

/** Compiles a glob (`*` any run, `?` one character; nothing else is special) to an anchored RegExp. */
export function globToRegExp(glob: string, flags = ''): RegExp {
  const body = glob.replace(/[.+^${}()|\\/[\]-]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.');
  return new RegExp(`^${body}$`, flags);
}

/** The result of matching patterns against existing names. */
export interface PatternMatch {
  /** Names matched, in the order of `candidates`, each once. */
  matched: string[];
  /** Patterns (as typed) that matched nothing. */
  unmatched: string[];
}

/**
 * Matches patterns (exact names, ranges, globs, or any mix) against the existing `candidates`.
 * `normalize` maps both sides before comparing (hardware addresses are compared canonical).
 */
export function matchPatterns(patterns: readonly string[], candidates: readonly string[], normalize: (s: string) => string = (s) => s): PatternMatch {
  const wanted = new Set<string>();
  const unmatched: string[] = [];
  const byNormal = new Map<string, string>();
  for (const c of candidates) byNormal.set(normalize(c), c);
  for (const pattern of patterns) {
    let hit = false;
    for (const expanded of expandRanges(pattern)) {
      if (isGlob(expanded)) {
        const re = globToRegExp(normalize(expanded));
        for (const [n, c] of byNormal) {
          if (re.test(n)) {
            wanted.add(c);
            hit = true;
          }
        }
      } else {
        const c = byNormal.get(normalize(expanded));
        if (c !== undefined) {
          wanted.add(c);
          hit = true;
        }
      }
    }
    if (!hit) unmatched.push(pattern);
  }
  return { matched: candidates.filter((c) => wanted.has(c)), unmatched };
}

/** Orders node names as an admin reads them: `n2` before `n10`, `rack1-n02` before `rack2-n01`. */
export function compareNames(a: string, b: string): number {
  // Hand-written rather than Intl.Collator({ numeric: true }): `node list` sorts 10,000 names.
  let i = 0;
  let j = 0;
  let tie = 0;
  while (i < a.length && j < b.length) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(j);
    if (isDigit(ca) && isDigit(cb)) {
      let ei = i;
      let ej = j;
      while (ei < a.length && isDigit(a.charCodeAt(ei))) ei++;
      while (ej < b.length && isDigit(b.charCodeAt(ej))) ej++;
      // Compare the runs as numbers: without leading zeros, the longer is larger, else digit by digit.
      let si = i;
      let sj = j;
      while (si < ei - 1 && a.charCodeAt(si) === 48) si++;
      while (sj < ej - 1 && b.charCodeAt(sj) === 48) sj++;
      if (ei - si !== ej - sj) return ei - si - (ej - sj);
      for (; si < ei; si++, sj++) if (a.charCodeAt(si) !== b.charCodeAt(sj)) return a.charCodeAt(si) - b.charCodeAt(sj);
      // Equal numbers: fewer leading zeros first (n1 before n01), unless the rest decides.
      if (tie === 0) tie = ei - i - (ej - j);
      i = ei;
      j = ej;
    } else {
      if (ca !== cb) return ca - cb;
      i++;
      j++;
    }
  }
  return a.length - i - (b.length - j) || tie;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** An auto-registration name pattern, e.g. `n####`: prefix `n`, 4 zero-padded digits, no suffix. */
export interface NamePattern {
  prefix: string;
  width: number;
  suffix: string;
}

/** Parses `prefix###suffix` (the first run of `#`); throws a UsageError when there is none. */
export function parseNamePattern(pattern: string): NamePattern {
  const m = /^([^#]*)(#+)([^#]*)$/.exec(pattern);
  if (!m) throw new UsageError(`node name pattern ${JSON.stringify(pattern)}: needs one run of # digits, e.g. n####`);
  return { prefix: m[1]!, width: m[2]!.length, suffix: m[3]! };
}

/** The name for number `n`: `n####`, 7 -> `n0007`. */
export function formatName(p: NamePattern, n: number): string {
  return `${p.prefix}${String(n).padStart(p.width, '0')}${p.suffix}`;
}

/** The numbers a pattern may hand out: from `first`, `total` of them (or up to the width's maximum). */
export function nameRange(p: NamePattern, first: number, total: number | null): { first: number; last: number } {
  const widthMax = 10 ** p.width - 1;
  const last = total === null ? widthMax : Math.min(widthMax, first + total - 1);
  return { first, last };
}

/** The first name of the pattern's range for which `taken` is false, or null when all are taken. */
export function nextFreeName(pattern: string, first: number, total: number | null, taken: (name: string) => boolean): string | null {
  return nextFree(pattern, first, total, taken)?.name ?? null;
}

/**
 * Like nextFreeName, with the number too, scanning from `from` (a caller that knows every number
 * below it is taken saves the scan: registering the 10,000th node need not try 9,999 names).
 */
export function nextFree(pattern: string, first: number, total: number | null, taken: (name: string) => boolean, from = first): { name: string; n: number } | null {
  const p = parseNamePattern(pattern);
  const range = nameRange(p, first, total);
  for (let n = Math.max(range.first, from); n <= range.last; n++) {
    const name = formatName(p, n);
    if (!taken(name)) return { name, n };
  }
  return null;
}
