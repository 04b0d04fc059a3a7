/**
 * The list of nouns. Each `register` adds one noun with its verbs to the program.
 * Adding a noun = one line in NOUNS.
 *
 * Nouns are imported on demand: a command loads only its own noun's modules (`node list` never
 * loads express, the DHCP server or node-pty), which keeps the start-up of every command short.
 * Help, an unknown word or no word at all loads every noun, in this order.
 */
import type { Command } from 'commander';

type Noun = () => Promise<{ register(program: Command): void }>;

const NOUNS: Record<string, Noun> = {
  serve: () => import('./serve/index.js'),
  power: () => import('./power/index.js'),
  reload: () => import('./reload/index.js'),
  console: () => import('./console/index.js'),
  node: () => import('./node/index.js'),
  group: () => import('./group/index.js'),
  initramfs: () => import('./initramfs/index.js'),
  vnfs: () => import('./vnfs/index.js'),
  script: () => import('./script/index.js'),
  module: () => import('./module/index.js'),
  token: () => import('./token/index.js'),
  task: () => import('./task/index.js'),
  db: () => import('./db/index.js'),
  cluster: () => import('./cluster/index.js'),
};

/** Root options that take a value (the word after them is not the noun). */
const VALUE_OPTIONS = new Set(['-c', '--config']);

/** The first word of `argv` that is not a root option or its value: the noun asked for. */
export function nounOf(argv: readonly string[]): string | null {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return argv[i + 1] ?? null;
    if (VALUE_OPTIONS.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    return a;
  }
  return null;
}

/** Registers the noun `argv` names, or every noun when it names none of them (help, typos). */
export async function registerCommands(program: Command, argv: readonly string[] = []): Promise<void> {
  const noun = nounOf(argv);
  const names = noun !== null && Object.hasOwn(NOUNS, noun) ? [noun] : Object.keys(NOUNS);
  const modules = await Promise.all(names.map((n) => NOUNS[n]()));
  for (const m of modules) m.register(program);
}
