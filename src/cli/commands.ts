/**
 * The list of nouns. Each `register` adds one noun with its verbs to the program.
 * Adding a noun = one import and one line here.
 */
import type { Command } from 'commander';
import { register as serve } from './serve/index.js';

export function registerCommands(program: Command): void {
  serve(program);
}
