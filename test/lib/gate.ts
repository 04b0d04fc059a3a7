/**
 * The one skip rule of the tests: a file (or subtest) whose prerequisite is missing here (not root, a
 * program or package not installed) skips with one line saying why, except under CI (`CI=true`),
 * where a skip is a failure: CI can never go green without running it.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export const isRoot = process.getuid?.() === 0;
export const underCi = process.env.CI === 'true';

/** The part of a tap test the gate needs. */
export interface Gated {
  plan(n: number, comment?: string): unknown;
  fail(msg: string): unknown;
}

/**
 * True when the file can run (`why` is null). Otherwise skips the whole file with `why`, or fails it
 * under CI, and returns false: the caller stops there (`if (!gate(t, why)) process.exit(0)`).
 */
export function gate(t: Gated, why: string | null): boolean {
  if (why === null) return true;
  if (underCi) t.fail(`cannot run under CI: ${why}`);
  else t.plan(0, `skip: ${why}`);
  return false;
}

/** `gate` for what needs root (network namespaces, chroot, taps); `what` says what for. */
export function needRoot(t: Gated, what = 'network namespaces'): boolean {
  return gate(t, rootMissing(what));
}

/** Why a root-only test cannot run here, or null. */
export function rootMissing(what = 'network namespaces'): string | null {
  return isRoot ? null : `needs root (${what}): run as root`;
}

/**
 * The `skip` option of a subtest: `why` outside CI; under CI false, so that the test runs and fails
 * on what is missing instead of skipping.
 */
export function skipUnlessCi(why: string | null): string | false {
  return why !== null && !underCi ? why : false;
}

/** The commands of `cmds` not found on PATH (nor in /usr/sbin, /sbin). */
export function missingCommands(cmds: string[]): string[] {
  const dirs = (process.env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/sbin']);
  return cmds.filter((cmd) => !dirs.some((d) => canAccess(join(d, cmd), constants.X_OK)));
}

/** The files of `files` that cannot be read. */
export function missingFiles(files: string[]): string[] {
  return files.filter((f) => !canAccess(f, constants.R_OK));
}

function canAccess(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}
