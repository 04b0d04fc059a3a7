/**
 * Finding, reading and parsing the configuration. Parsing is pure (`parseConfig`); I/O is in
 * `loadConfig`. A bad file is refused with the file, the key path and the reason.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isMap, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../util/errors.js';
import { type Config, configSchema } from './schema.js';

/** Where the config is looked for: --config, $PROVISIOND_CONFIG, ./etc/provisiond.yaml, /etc/provisiond/provisiond.yaml. */
export function findConfig(explicit?: string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string | null {
  if (explicit) return resolve(cwd, explicit);
  if (env.PROVISIOND_CONFIG) return resolve(cwd, env.PROVISIOND_CONFIG);
  for (const candidate of [resolve(cwd, 'etc/provisiond.yaml'), '/etc/provisiond/provisiond.yaml']) {
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

function keyPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)), '');
}

function describeIssue(issue: z.core.$ZodIssue): { key: string; reason: string } {
  if (issue.code === 'unrecognized_keys') {
    const k = issue.keys[0]!;
    return { key: keyPath([...issue.path, k]), reason: 'unknown key' };
  }
  return { key: keyPath(issue.path), reason: issue.message.replace(/^Invalid input: /, '') };
}

/**
 * Parses config text. `file` names it in errors. Relative `statedir` is resolved against `cwd`.
 * Returns a deeply frozen Config.
 */
export function parseConfig(text: string, file = '<config>', cwd = process.cwd()): Config {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new ConfigError(file, '', `${line ? `line ${line}: ` : ''}${e.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.contents === null ? {} : doc.toJS();
  if (doc.contents !== null && !isMap(doc.contents)) throw new ConfigError(file, '', 'the top level must be a mapping of keys');
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const { key, reason } = describeIssue(parsed.error.issues[0]!);
    throw new ConfigError(file, key, reason);
  }
  const { api } = parsed.data;
  if (api.enabled && !api.listen.startsWith('127.') && api.tls === null && !api.insecure) {
    throw new ConfigError(file, 'api.listen', `${api.listen} is not a loopback address: API tokens would cross the network in clear; set api.tls (cert and key), or api.insecure: true`);
  }
  const { metrics } = parsed.data;
  if (metrics.enabled && !metrics.listen.startsWith('127.') && metrics.tls === null && !metrics.insecure) {
    throw new ConfigError(file, 'metrics.listen', `${metrics.listen} is not a loopback address: the scraper's token would cross the network in clear; set metrics.tls (cert and key), or metrics.insecure: true`);
  }
  const value = { ...parsed.data, statedir: resolve(cwd, parsed.data.statedir), source: file };
  return deepFreeze(value) as Config;
}

/** Reads and parses a config file. With no file found, the embedded defaults are used. */
export function loadConfig(explicit?: string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const file = findConfig(explicit, env, cwd);
  if (file === null) return parseConfig('', '<defaults>', cwd);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '', `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  return parseConfig(text, file, cwd);
}

/** Resolves a path of the config (tftp.root, a sqlite file) against the statedir. */
export function statePath(config: Pick<Config, 'statedir'>, p: string): string {
  return resolve(config.statedir, p);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
