/**
 * `script lint`: walks `nodescripts/<state>/{all,node/*,group/*,vnfs/*}` and reports, with file and
 * line, the mistakes of lint-text.ts plus those of the tree itself: files that will be skipped,
 * links pointing nowhere or outside, names outside the `XX-name` convention, stray folders.
 */
import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join, relative, isAbsolute, sep } from 'node:path';
import { assertState, isState } from '../util/names.js';
import { isIgnoredName } from './discover.js';
import { lintScriptText } from './lint-text.js';

export interface LintFinding {
  file: string;
  line: number;
  severity: 'error' | 'warning';
  message: string;
}

/** The folder of modules inside the nodescripts tree: not a provisionary state. */
export const MODULES = 'modules';
const CONVENTION = /^\d\d-[A-Za-z0-9][\w.+-]*$/;
const SHELL_SHEBANG = /^#!\s*(?:\/usr)?\/bin\/(?:env\s+)?(?:sh|bash|ash|dash|ksh|mksh|zsh|busybox\s+sh)(?:\s|$)/;

async function entries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw err;
  }
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

function inside(root: string, p: string): boolean {
  const r = relative(root, p);
  return r === '' || (!r.startsWith(`..${sep}`) && r !== '..' && !isAbsolute(r));
}

/** Lints the tree under `root` (a `nodescripts` folder) whose scripts may link within `statedir`. */
export async function lintTree(root: string, statedir: string, state?: string): Promise<LintFinding[]> {
  if (state !== undefined) assertState(state);
  const findings: LintFinding[] = [];
  // `modules/` holds Perceus-style modules (`modules/<module>/<state>/XX-name`), linked into states when activated.
  const states = state !== undefined ? [state] : (await entries(root)).filter((s) => isState(s) && s !== MODULES);
  const realState = await realpath(statedir).catch(() => statedir);
  for (const s of states) {
    const base = join(root, s);
    const folders: string[] = [];
    for (const f of await entries(base)) {
      if (isIgnoredName(f)) continue;
      if (f === 'all') folders.push(join(base, f));
      else if (f === 'node' || f === 'group' || f === 'vnfs') for (const n of await entries(join(base, f))) folders.push(join(base, f, n));
      else if (await isDir(join(base, f))) findings.push({ file: join(base, f), line: 0, severity: 'warning', message: 'folder not used by provisiond (use all/, node/NAME/, group/NAME/ or vnfs/NAME/)' });
      else findings.push({ file: join(base, f), line: 0, severity: 'warning', message: `file directly under ${s}/ is never used (put it in ${s}/all/)` });
    }
    for (const folder of folders) for (const name of await entries(folder)) if (!isIgnoredName(name)) await lintFile(join(folder, name), name, realState, statedir, findings);
  }
  for (const mod of state === undefined ? await entries(join(root, MODULES)) : []) {
    for (const s of (await entries(join(root, MODULES, mod))).filter((x) => isState(x) && !isIgnoredName(x))) {
      const folder = join(root, MODULES, mod, s);
      if (!(await isDir(folder))) continue;
      for (const name of await entries(folder)) if (!isIgnoredName(name)) await lintFile(join(folder, name), name, realState, statedir, findings);
    }
  }
  return findings;
}

async function lintFile(path: string, name: string, realState: string, statedir: string, findings: LintFinding[]): Promise<void> {
  const add = (line: number, severity: 'error' | 'warning', message: string): void => {
    findings.push({ file: path, line, severity, message });
  };
  const ls = await lstat(path);
  let target = path;
  if (ls.isSymbolicLink()) {
    try {
      target = await realpath(path);
    } catch {
      return add(0, 'error', 'symbolic link pointing nowhere: it will be skipped');
    }
    if (!inside(realState, target) && !inside(statedir, target)) return add(0, 'error', `symbolic link pointing outside the statedir (${target}): it will be skipped`);
  }
  const st = await stat(target);
  if (st.isDirectory()) return;
  if (!CONVENTION.test(name)) add(0, 'warning', 'name outside the XX-name convention (00-09 init, 10-79 vnfs init, 80-89 de-init, 90-99 vnfs de-init)');
  const executable = (st.mode & 0o111) !== 0;
  const buf = await readFile(target);
  if (buf.subarray(0, 8192).includes(0)) return; // a binary: nothing to read
  const text = buf.toString('utf8');
  if (!executable) {
    if (!SHELL_SHEBANG.test(text.split('\n', 1)[0])) add(0, 'warning', 'not executable and not a #!/bin/sh script: it will be skipped (chmod +x to run it on the master)');
    return;
  }
  for (const f of lintScriptText(text, true)) add(f.line, f.severity, f.message);
}
