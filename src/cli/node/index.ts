/**
 * `provisiond node ...`: one verb per file. Adding a verb = one import and one line in `register`.
 */
import type { Command } from 'commander';
import { register as add } from './add.js';
import { registerAllocate } from './allocate.js';
import { registerBootdev } from './bootdev.js';
import { register as del } from './delete.js';
import { registerDeploy } from './deploy.js';
import { register as importNodes } from './import.js';
import { register as list } from './list.js';
import { register as rename } from './rename.js';
import { register as set } from './set.js';
import { register as show } from './show.js';
import { register as status } from './status.js';
import { register as timeline } from './timeline.js';

export function register(program: Command): void {
  const node = program.command('node').description('manage nodes: add, list, show, set, delete, import ...');
  add(node);
  list(node);
  show(node);
  set(node);
  del(node);
  rename(node);
  status(node);
  timeline(node);
  registerBootdev(node);
  registerDeploy(node);
  registerAllocate(node);
  importNodes(node);
}
