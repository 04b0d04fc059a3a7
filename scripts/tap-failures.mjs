#!/usr/bin/env node
// Prints every failing assertion of a TAP file with the subtests it sits in and its diagnostic, so a
// red CI log says which test failed and why. Usage: node scripts/tap-failures.mjs .tap/ci-results.tap
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? '.tap/ci-results.tap';
let lines;
try {
  lines = readFileSync(file, 'utf8').split('\n');
} catch (err) {
  console.log(`tap-failures: cannot read ${file}: ${err.message}`);
  process.exit(0);
}

const indentOf = (l) => l.length - l.trimStart().length;
const stack = []; // [{ indent, name }]
let shown = 0;
for (let i = 0; i < lines.length; i++) {
  const line = lines[i];
  const sub = /^(\s*)# Subtest: (.*)$/.exec(line);
  if (sub) {
    const indent = sub[1].length;
    while (stack.length && stack[stack.length - 1].indent >= indent) stack.pop();
    stack.push({ indent, name: sub[2] });
    continue;
  }
  const bad = /^(\s*)not ok \d+ - (.*)$/.exec(line);
  if (!bad || /# TODO/.test(line)) continue;
  const indent = bad[1].length;
  // A subtest's own summary line ("not ok N - name # time=") repeats a failure already shown.
  if (/# time=/.test(line) && shown > 0) continue;
  const path = stack.filter((s) => s.indent < indent).map((s) => s.name);
  console.log(`FAILED: ${[...path, bad[2]].join(' > ')}`);
  shown++;
  // The YAML diagnostic that follows, at most 40 lines.
  if (lines[i + 1]?.trim() === '---') {
    const out = [];
    for (let j = i + 1; j < lines.length && out.length < 40; j++) {
      out.push(lines[j]);
      if (lines[j].trim() === '...' && indentOf(lines[j]) >= indent) break;
    }
    console.log(out.join('\n'));
  }
}
if (shown === 0) console.log('tap-failures: no failing assertion in the TAP file');
