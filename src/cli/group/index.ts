/**
 * `provisiond group ...`: a group's settings (vnfs, enabled, debug, boot, attributes) apply to its
 * nodes unless set on the node. One verb per file; adding a verb = one import and one line.
 */
import type { Command } from 'commander';
import { register as list } from './list.js';
import { register as nodelist } from './nodelist.js';
import { register as set } from './set.js';
import { register as show } from './show.js';

export function register(program: Command): void {
  const group = program.command('group').description('manage groups: the settings their nodes inherit');
  list(group);
  show(group);
  set(group);
  nodelist(group);
}
