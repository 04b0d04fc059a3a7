/**
 * The checks of `script lint` on one script's text: the mistakes the Perceus documentation warns
 * about. Pure: text in, findings out (line numbers from 1).
 */
import { MASTER_VARIABLES } from './env.js';
import { secretInLine } from './lint-secrets.js';

export interface TextFinding {
  line: number;
  severity: 'error' | 'warning';
  message: string;
}

const POWER = /(?:^|[;&|({`]|\$\(|\b(?:then|do|else|exec|sudo|nohup|command)\s)\s*(?:\/usr)?(?:\/s?bin\/)?(reboot|shutdown|poweroff|halt|kexec)\b/;
const INIT = /(?:^|[;&|({`]|\$\(|\b(?:then|do|else|exec|sudo)\s)\s*(?:\/s?bin\/)?(?:tel)?init\s+([06])\b/;
const SYSTEMCTL = /(?:^|[;&|({`]|\$\(|\b(?:then|do|else|exec|sudo)\s)\s*(?:\/usr)?(?:\/bin\/)?systemctl\s+(reboot|poweroff|halt|kexec)\b/;
const OUTPUT = /\b(echo|printf|cat|tee|sed|awk|exec|print|say|puts|write)\b|>&1/;
const ECHO = /(?:^|[;&|({]|\b(?:then|do|else)\s)\s*echo\s(.*)$/;
const HEREDOC = /<<(-?)\s*(['"]?)([A-Za-z_][\w]*)\2/;

/** Text with quoted strings blanked, so that `echo "x; reboot"` is not read as running reboot. */
function unquoted(line: string): string {
  return line.replace(/'[^']*'/g, "''").replace(/"(?:[^"\\]|\\.)*"/g, '""');
}

/** The parts of an echo's arguments the master's shell expands: outside single quotes. */
function expandedParts(args: string): string {
  return args.replace(/'[^']*'/g, ' ');
}

function stripComment(line: string): string {
  // A `#` starting a word begins a comment (not inside quotes; good enough for the checks).
  const u = unquoted(line);
  const m = /(^|\s)#/.exec(u);
  return m ? line.slice(0, m.index) : line;
}

/** Variables `$NAME` the master would expand in `text` (escaped `\$NAME` excluded). */
function masterExpansions(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(\\*)\$\{?([A-Za-z_]\w*)/g)) {
    if (m[1].length % 2 === 1) continue;
    out.push(m[2]);
  }
  return out;
}

/** Lints a script. `executable` scripts run on the master; the others go to the node verbatim. */
export function lintScriptText(text: string, executable: boolean): TextFinding[] {
  const findings: TextFinding[] = [];
  if (!executable) return findings;
  const lines = text.split('\n');
  const known = new Set(MASTER_VARIABLES);
  // Variables the script sets itself are master-side too (for, read, NAME=).
  for (const l of lines) {
    for (const m of l.matchAll(/\b(?:for|read(?:\s+-\w+)*)\s+([A-Za-z_]\w*(?:\s+[A-Za-z_]\w*)*)/g)) for (const v of m[1].split(/\s+/)) known.add(v);
    for (const m of stripComment(l).matchAll(/(?:^|[\s;"'`(]|\\\$)([A-Za-z_]\w*)=/g)) known.add(m[1]);
  }
  const isMasterVar = (v: string) => known.has(v) || v.startsWith('ATTR_');
  let heredoc: { end: string; expands: boolean; dash: boolean } | null = null;
  let printsSomething = false;
  lines.forEach((raw, i) => {
    const n = i + 1;
    if (heredoc) {
      const candidate = heredoc.dash ? raw.replace(/^\t+/, '') : raw;
      if (candidate === heredoc.end) {
        heredoc = null;
        return;
      }
      if (heredoc.expands) checkExpansions(raw, n, 'a here-document');
      secret(raw, n, true);
      return;
    }
    if (n === 1 && raw.startsWith('#!')) return;
    const code = stripComment(raw);
    if (code.trim() === '') return;
    const bare = unquoted(code);
    if (OUTPUT.test(bare)) printsSomething = true;
    const power = POWER.exec(bare) ?? SYSTEMCTL.exec(bare);
    if (power) {
      findings.push({ line: n, severity: 'error', message: `runs ${power[1]} on the master, not on the node: print it instead (echo ${power[1]})` });
    } else {
      const init = INIT.exec(bare);
      if (init) findings.push({ line: n, severity: 'error', message: `runs init ${init[1]} on the master, not on the node: print it instead (echo init ${init[1]})` });
    }
    const echo = ECHO.exec(code);
    secret(code, n, echo !== null || /(?:^|[;&|({]|\b(?:then|do|else)\s)\s*printf\s/.test(code));
    if (echo) {
      checkExpansions(expandedParts(echo[1]), n, 'an echoed line');
      if (/(?<!\\)`/.test(expandedParts(echo[1]))) {
        findings.push({ line: n, severity: 'warning', message: 'backticks inside an echoed line run on the master; if meant for the node, escape them (\\`)' });
      }
    }
    const hd = HEREDOC.exec(bare.includes('<<') ? code : '');
    if (hd) heredoc = { end: hd[3], expands: hd[2] === '', dash: hd[1] === '-' };
  });
  if (!printsSomething) {
    findings.push({ line: 1, severity: 'warning', message: 'executable script that prints nothing: only its output reaches the node (a node-side script must be non-executable, starting with #!/bin/sh)' });
  }
  return findings;

  function secret(text: string, n: number, printed: boolean) {
    const why = secretInLine(text, printed);
    if (why) findings.push({ line: n, severity: 'warning', message: why });
  }

  function checkExpansions(text: string, n: number, where: string) {
    for (const v of new Set(masterExpansions(text))) {
      if (isMasterVar(v)) continue;
      findings.push({ line: n, severity: 'warning', message: `$${v} in ${where} expands on the master, where it is not set; for the node write \\$${v}` });
    }
  }
}
