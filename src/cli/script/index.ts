/** `provisiond script render|list|lint|diff`: what nodes receive, a check of the nodescripts tree, and how it differs from another server's. */
import type { Command } from 'commander';
import { register as diff } from './diff.js';
import { register as lint } from './lint.js';
import { register as list } from './list.js';
import { register as render } from './render.js';

export function register(program: Command): void {
  const script = program
    .command('script')
    .description("nodescripts: render a node's script, list what it gets, lint the tree, diff it with another server's");
  render(script);
  list(script);
  lint(script);
  diff(script);
}
