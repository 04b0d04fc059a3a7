/**
 * bench/RESULTS.md, written by the benches: each bench ends by handing its section (what was measured
 * and how, one table of our figure, the peer's from the same run and the ratio, optional notes) to
 * `BenchResults.write`, which replaces that bench's `## <name>` section of the file in place and
 * leaves the header and the other sections byte for byte.
 *
 * A run with settings other than the bench's defaults (smoke runs with fewer nodes, fewer runs, a
 * subset of rows) does not write unless BENCH_WRITE=1; when it does, its section says which settings
 * differed. BENCH_RESULTS names another file to write (default bench/RESULTS.md).
 *
 * `formatSection` and `replaceSection` are pure (tested in test/bench/results.test.ts); the I/O is
 * in `BenchResults` and `machineNow`.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';

/** One column of a section's table: its heading and whether its figures line up to the right. */
export interface Column {
  title: string;
  align?: 'left' | 'right';
}

/** What a bench hands over at its end. */
export interface Section {
  /** The section's name: the bench's file name without `.ts` (`## <name>`). */
  name: string;
  /** What was measured and how, one paragraph (the ratio's direction included). */
  title: string;
  columns: Column[];
  rows: string[][];
  /** Paragraphs after the table: goals met or not, figures that fit no column. */
  notes?: string[];
}

/** The machine a run took place on and how busy it was. */
export interface Machine {
  cores: number;
  memoryBytes: number;
  kernel: string;
  /** 1, 5 and 15 minute load averages (as `uptime` prints them) at the start and at the end. */
  loadStart: number[];
  loadEnd: number[];
}

/** When, where and how a section's figures were taken. */
export interface Stamp {
  started: Date;
  ended: Date;
  machine: Machine;
  /** The exact command line, with the bench's environment settings in front. */
  command: string;
  /** Settings that differ from the bench's defaults, or null for a run with the defaults. */
  nonDefault: string | null;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

function utc(d: Date): string {
  const hm = `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}, ${hm} UTC`;
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : `${Math.round(s / 60)} min`;
}

const loads = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');

/** A table cell: one line, its pipes escaped (`find \| cpio`), never empty. */
function cell(text: string): string {
  const one = text.replace(/\s*\n\s*/g, ' ').replace(/(?<!\\)\|/g, '\\|').trim();
  return one === '' ? '-' : one;
}

/** The markdown table of a section. A row of the wrong width is a bench bug: it throws. */
export function formatTable(columns: Column[], rows: string[][]): string {
  if (columns.length === 0) throw new TypeError('bench results: a table needs at least one column');
  for (const r of rows) {
    if (r.length !== columns.length) throw new TypeError(`bench results: row "${r[0]}" has ${r.length} cells for ${columns.length} columns`);
  }
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    line(columns.map((c) => cell(c.title))),
    line(columns.map((c) => (c.align === 'right' ? '---:' : '---'))),
    ...rows.map((r) => line(r.map(cell))),
  ].join('\n');
}

/** The whole `## <name>` section, ending with one newline. */
export function formatSection(section: Section, stamp: Stamp): string {
  const m = stamp.machine;
  const gib = (m.memoryBytes / 2 ** 30).toFixed(1);
  const when =
    `${utc(stamp.started)} (${duration(stamp.ended.getTime() - stamp.started.getTime())}); ` +
    `${m.cores} cores, ${gib} GiB, Linux ${m.kernel}; load average (1, 5, 15 min) ${loads(m.loadStart)} at the start, ${loads(m.loadEnd)} at the end. ` +
    `Command: \`${stamp.command}\`.`;
  const parts = [`## ${section.name}`, when];
  if (stamp.nonDefault) parts.push(`**Not the bench's default settings** (${stamp.nonDefault}): not comparable with a full run.`);
  parts.push(section.title.trim(), formatTable(section.columns, section.rows));
  for (const n of section.notes ?? []) if (n.trim() !== '') parts.push(n.trim());
  return `${parts.join('\n\n')}\n`;
}

/**
 * The file's text with section `name` replaced by `section` (from `formatSection`), or appended
 * when the file has none. Everything else (the header before the first `## `, the other sections)
 * is kept byte for byte; one blank line separates the new section from the next.
 */
export function replaceSection(file: string, name: string, section: string): string {
  const heading = `## ${name}`;
  const lines = file.split('\n');
  const start = lines.findIndex((l) => l.trimEnd() === heading);
  if (start === -1) {
    const base = file === '' || file.endsWith('\n\n') ? file : file.endsWith('\n') ? `${file}\n` : `${file}\n\n`;
    return base + section;
  }
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  const head = start === 0 ? '' : `${lines.slice(0, start).join('\n')}\n`;
  if (end === -1) return head + section;
  return `${head}${section}\n${lines.slice(end).join('\n')}`;
}

/** The machine now: cores, memory, kernel and the load average so far. */
export function machineNow(loadStart: number[]): Machine {
  return { cores: availableParallelism(), memoryBytes: totalmem(), kernel: release(), loadStart, loadEnd: loadavg() };
}

const repo = resolve(import.meta.dirname, '../..');

/**
 * The section writer of one bench run: made at the bench's start (the start time and load), used
 * at its end.
 */
export class BenchResults {
  readonly #name: string;
  readonly #envPrefix: string | null;
  readonly #started = new Date();
  readonly #loadStart = loadavg();
  #nonDefault: string[] = [];

  /** `envPrefix`: the bench's environment settings (`DHCP_BENCH_`), shown in front of the command. */
  constructor(name: string, options: { envPrefix?: string } = {}) {
    this.#name = name;
    this.#envPrefix = options.envPrefix ?? null;
  }

  /** The load average (1, 5, 15 min) when the bench started. */
  get loadStart(): number[] {
    return this.#loadStart;
  }

  /** Records a setting that differs from the bench's default (`--nodes 1000 (default 10,000)`). */
  nonDefault(setting: string): void {
    this.#nonDefault.push(setting);
  }

  /** The command line of this run, as typed. */
  command(): string {
    const env = this.#envPrefix
      ? Object.entries(process.env)
          .filter(([k]) => k.startsWith(this.#envPrefix!))
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([k, v]) => `${k}=${v}`)
      : [];
    const script = relative(repo, process.argv[1] ?? '');
    const node = ['node', ...process.execArgv, script, ...process.argv.slice(2)];
    const shell = (w: string) => (/^[\w./:=,@%+-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);
    return [...env, ...node].map(shell).join(' ');
  }

  /**
   * Writes the section into the results file, or says why not (a run with other than the default
   * settings, without BENCH_WRITE=1). Prints one line either way.
   */
  write(section: Section): void {
    if (section.name !== this.#name) throw new TypeError(`bench results: section ${section.name} written by bench ${this.#name}`);
    const nonDefault = this.#nonDefault.length > 0 ? this.#nonDefault.join('; ') : null;
    const file = resolve(process.env.BENCH_RESULTS ?? join(repo, 'bench/RESULTS.md'));
    const shown = relative(process.cwd(), file).startsWith('..') ? file : relative(process.cwd(), file);
    const text = formatSection(section, { started: this.#started, ended: new Date(), machine: machineNow(this.#loadStart), command: this.command(), nonDefault });
    console.log(`\n${text}`);
    if (nonDefault && process.env.BENCH_WRITE !== '1') {
      console.log(`bench/${this.#name}: ${shown} not written: not the default settings (${nonDefault}); BENCH_WRITE=1 writes it anyway`);
      return;
    }
    let old = '';
    try {
      old = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    // Renamed into place: a bench killed while writing leaves the old file whole.
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, replaceSection(old, this.#name, text));
    renameSync(tmp, file);
    console.log(`bench/${this.#name}: section written to ${shown}`);
  }
}
