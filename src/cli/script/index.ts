/** `provisiond script render|list|lint`: what nodes receive, and a check of the nodescripts tree. */
import type { Command } from 'commander';
import { register as lint } from './lint.js';
import { register as list } from './list.js';
import { register as render } from './render.js';

export function register(program: Command): void {
  const script = program
    .command('script')
    .description("nodescripts: render a node's script, list what it gets, lint the tree");
  render(script);
  list(script);
  lint(script);
}
