/** Where things are, for tests and benches started from any folder. */
import { join, resolve } from 'node:path';

/** The repository root. */
export const REPO = resolve(import.meta.dirname, '../..');
/** The CLI, as an admin runs it. */
export const CLI = join(REPO, 'bin/provisiond.js');
