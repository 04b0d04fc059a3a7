/**
 * Validation of names that become folder names on the master (node, group, vnfs) and of
 * provisionary states. Nothing that arrives from a request may carry `/` or `..` into a path.
 */
import { UsageError } from './errors.js';

const PLAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/;
const STATE = /^\w+$/;

/** True when `name` is safe as a single path component: no `/`, no `..`, no leading dot or dash. */
export function isPlainName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && PLAIN_NAME.test(name) && !name.includes('..');
}

/** Throws a UsageError unless `name` is a plain name. `what` says what it names ("node name"). */
export function assertPlainName(name: string, what: string): string {
  if (!isPlainName(name)) throw new UsageError(`invalid ${what} ${JSON.stringify(name)}: use letters, digits and . _ + - only`);
  return name;
}

/** A provisionary state is `^\w+$` (`init`, `ready`, or one the admin invents). */
export function isState(state: string): boolean {
  return STATE.test(state);
}

export function assertState(state: string): string {
  if (!isState(state)) throw new UsageError(`invalid provisionary state ${JSON.stringify(state)}: must match ^\\w+$`);
  return state;
}
