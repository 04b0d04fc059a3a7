/**
 * The list of nouns. Each `register` adds one noun with its verbs to the program.
 * Adding a noun = one import and one line here.
 */
import type { Command } from 'commander';
import { register as serve } from './serve/index.js';
import { register as power } from './power/index.js';
import { register as reload } from './reload/index.js';
import { register as consoleNoun } from './console/index.js';
import { register as node } from './node/index.js';
import { register as group } from './group/index.js';
import { register as initramfs } from './initramfs/index.js';
import { register as vnfs } from './vnfs/index.js';
import { register as script } from './script/index.js';
import { register as moduleNoun } from './module/index.js';

export function registerCommands(program: Command): void {
  serve(program);
  power(program);
  reload(program);
  consoleNoun(program);
  node(program);
  group(program);
  initramfs(program);
  vnfs(program);
  script(program);
  moduleNoun(program);
}
