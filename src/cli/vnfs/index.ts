/** `provisiond vnfs ...`: VNFS capsules (the node root file systems) and their images. */
import type { Command } from 'commander';
import { register as list } from './list.js';
import { register as transfer } from './transfer.js';
import { register as manage } from './manage.js';
import { register as build } from './build.js';
import { register as capture } from './capture.js';

export function register(program: Command): void {
  const vnfs = program.command('vnfs').description('VNFS capsules: the root file systems nodes boot into, and their images');
  list(vnfs);
  transfer(vnfs);
  manage(vnfs);
  build(vnfs);
  capture(vnfs);
}
