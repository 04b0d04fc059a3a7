/**
 * Driver settings from a node's attributes. They live under dotted keys (`power.driver`,
 * `power.address`, ...) set on the node or its group; the registry's `resolve()` has already merged
 * the group's under the node's. Parsing is pure; only `power.passwordFile` is read from disk.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../util/errors.js';
import { MASK, type PowerSettings } from './types.js';

const PREFIX = 'power.';

/** True when the node has a power driver configured. */
export function hasPowerDriver(attrs: Record<string, string>): boolean {
  return Boolean(attrs['power.driver']?.trim());
}

/**
 * The settings of a node from its resolved attributes. `statedir` anchors a relative
 * `power.passwordFile` and `power.dir`. Throws a UsageError naming the node when no driver is set or
 * the password file cannot be read.
 */
export function powerSettings(node: string, attrs: Record<string, string>, statedir: string): PowerSettings {
  const raw: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) if (k.startsWith(PREFIX)) raw[k.slice(PREFIX.length)] = v;
  const driver = raw.driver?.trim();
  if (!driver) throw new UsageError(`${node}: no power driver set (provisiond node set power.driver ipmi|redfish|exec|qemu ${node})`);
  let password = raw.password ?? null;
  if (password === null && raw.passwordFile) {
    const file = resolve(statedir, raw.passwordFile);
    try {
      password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new UsageError(`${node}: reading power.passwordFile ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
  }
  const dir = raw.dir ? resolve(statedir, raw.dir) : null;
  return {
    driver,
    address: raw.address || null,
    user: raw.user || null,
    password,
    dir,
    args: splitArgs(raw.args ?? ''),
    console: raw.console || null,
    raw,
  };
}

/** Splits `power.args` on whitespace, honouring single and double quotes and backslashes (no expansion). */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < text.length) {
      cur += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw new UsageError(`power.args: unterminated ${quote} quote in ${JSON.stringify(text)}`);
  if (inWord) out.push(cur);
  return out;
}

/**
 * Replaces every occurrence of the secrets in `text` with `****`: the last line of defence for
 * messages that come back from a BMC or a site program (which may echo what it was given).
 */
export function maskSecrets(text: string, secrets: ReadonlyArray<string | null | undefined>): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 1) out = out.split(s).join(MASK);
  return out;
}

/** Attribute values for display (`node show`, logs): `power.password` shown as `****`. */
export function maskAttrs(attrs: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) out[k] = isSecretKey(k) ? MASK : v;
  return out;
}

/** Attribute keys that hold secrets. */
export function isSecretKey(key: string): boolean {
  return /(^|\.)(password|secret|token)$/i.test(key);
}

/** Quotes an argument for a shell-like display line (dry-run), only when it needs it. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
