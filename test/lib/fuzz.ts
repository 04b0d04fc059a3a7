/**
 * Hostile input for the node-facing parsers and servers, deterministic so a failure replays:
 * - `rng(seed)`: xorshift32.
 * - `mutate()`: the byte-level mutations a fuzzer makes (bit flips, interesting values, truncation,
 *   insertion, duplication, splicing two inputs, dictionary tokens), for binary and text protocols.
 * - `guidedFuzz()`: coverage-guided mutation of a corpus, the way jsfuzz and libFuzzer work: V8's
 *   block coverage (through the inspector) says which inputs reached new code, and those join the
 *   corpus the next inputs are mutated from. It resets V8's counters, so it must not run in a
 *   process whose coverage is being collected: `runGuided()` starts it in a child process without
 *   NODE_V8_COVERAGE (test/lib/fuzz-child.ts), and the parent test asserts on its report.
 */
import { spawn } from 'node:child_process';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { TS_NODE_ARGS } from '../ts-child.js';
import { REPO } from './paths.js';

/** xorshift32: the same seed gives the same sequence. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x20, 0x0a, 0x0d, 0x25, 0x2f, 0x2e, 0x3d, 0x3f, 0x26, 0x00];

/**
 * One mutation (or a few stacked) of `input`. `corpus` feeds splicing; `dict` holds tokens of the
 * protocol (option names, `../`, header names) that a random byte would take forever to spell.
 */
export function mutate(input: Buffer, r: () => number, corpus: readonly Buffer[] = [], dict: readonly Buffer[] = [], maxLength = 4096): Buffer {
  const int = (n: number) => Math.floor(r() * n);
  let b = Buffer.from(input);
  for (let round = 0, rounds = 1 + int(4); round < rounds; round++) {
    const at = b.length ? int(b.length) : 0;
    switch (int(dict.length ? 10 : 9)) {
      case 0: // bit flip
        if (b.length) b[at]! ^= 1 << int(8);
        break;
      case 1: // an interesting byte
        if (b.length) b[at] = INTERESTING[int(INTERESTING.length)]!;
        break;
      case 2: // random byte
        if (b.length) b[at] = int(256);
        break;
      case 3: // truncate
        b = b.subarray(0, at);
        break;
      case 4: // delete a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(16)))]);
        break;
      case 5: {
        // insert random bytes
        const n = 1 + int(int(4) === 0 ? 300 : 8);
        const ins = Buffer.allocUnsafe(n);
        for (let k = 0; k < n; k++) ins[k] = int(256);
        b = Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
        break;
      }
      case 6: {
        // duplicate a range (repeated options, repeated headers)
        const len = 1 + int(Math.max(1, b.length - at));
        const times = 1 + int(int(8) === 0 ? 64 : 3);
        b = Buffer.concat([b.subarray(0, at + len), ...Array.from({ length: times }, () => b.subarray(at, at + len)), b.subarray(at + len)]);
        break;
      }
      case 7: {
        // splice with another input of the corpus
        const other = corpus.length ? corpus[int(corpus.length)]! : b;
        b = Buffer.concat([b.subarray(0, at), other.subarray(int(other.length + 1))]);
        break;
      }
      case 8: {
        // a 16- or 32-bit field set to an edge value
        if (b.length >= 2) {
          const edges = [0, 1, 0x7fff, 0x8000, 0xffff, 0xfffe];
          b.writeUInt16BE(edges[int(edges.length)]!, Math.min(at, b.length - 2));
        }
        break;
      }
      default: {
        // a dictionary token inserted or overwriting
        const tok = dict[int(dict.length)]!;
        b = int(2) ? Buffer.concat([b.subarray(0, at), tok, b.subarray(at)]) : Buffer.concat([b.subarray(0, at), tok, b.subarray(Math.min(b.length, at + tok.length))]);
      }
    }
  }
  return b.length > maxLength ? b.subarray(0, maxLength) : b;
}

export interface GuidedOptions {
  seeds: readonly Buffer[];
  dict?: readonly Buffer[];
  /** Inputs to run, seeds included. */
  count: number;
  seed: number;
  /** The code under test: throws only on a finding (an unexpected exception or a broken invariant). */
  target: (input: Buffer) => void;
  /** Which scripts' coverage guides (their URL matches). */
  cover: RegExp;
  maxLength?: number;
}

export interface GuidedReport {
  runs: number;
  /** Inputs kept because they reached new blocks. */
  corpus: number;
  /** Blocks reached by the seeds alone, and by the whole run. */
  seedBlocks: number;
  blocks: number;
  /** Hex of the inputs the target threw on, with the message (empty: nothing found). */
  findings: Array<{ input: string; error: string }>;
}

/** Coverage-guided fuzzing of `target` in this process (see the file comment: not under coverage). */
export async function guidedFuzz(o: GuidedOptions): Promise<GuidedReport> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  // A block is a source range V8 reported for a function. V8 leaves out a nested range whose count
  // equals its parent's, so a block absent from a take ran as often as the innermost reported range
  // around it: every block ever reported is judged that way at each take.
  const known = new Map<string, { script: string; start: number; end: number }>();
  const seen = new Set<string>();
  /** The blocks run since the last call that are not in `seen` (V8 resets its counters at each take). */
  const fresh = async (): Promise<string[]> => {
    const { result } = await session.post('Profiler.takePreciseCoverage');
    const out: string[] = [];
    for (const script of result) {
      if (!o.cover.test(script.url)) continue;
      const ranges = script.functions.flatMap((fn) => fn.ranges);
      const reported = new Map<string, number>();
      for (const range of ranges) {
        const key = `${script.scriptId}:${range.startOffset}:${range.endOffset}`;
        reported.set(key, range.count);
        if (!known.has(key)) known.set(key, { script: script.scriptId, start: range.startOffset, end: range.endOffset });
      }
      for (const [key, block] of known) {
        if (block.script !== script.scriptId || seen.has(key)) continue;
        let count = reported.get(key);
        if (count === undefined) {
          let inner: { span: number; count: number } | null = null;
          for (const range of ranges) {
            if (range.startOffset <= block.start && range.endOffset >= block.end && (!inner || range.endOffset - range.startOffset < inner.span)) inner = { span: range.endOffset - range.startOffset, count: range.count };
          }
          count = inner?.count ?? 0;
        }
        if (count > 0) out.push(key);
      }
    }
    return out;
  };
  const findings: GuidedReport['findings'] = [];
  const run = (input: Buffer) => {
    try {
      o.target(input);
    } catch (err) {
      if (findings.length < 20) findings.push({ input: input.toString('hex'), error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    }
  };
  await fresh(); // drop what ran before
  const corpus: Buffer[] = [];
  for (const s of o.seeds) {
    run(s);
    corpus.push(s);
  }
  for (const k of await fresh()) seen.add(k);
  const seedBlocks = seen.size;
  const r = rng(o.seed);
  /** Runs `inputs` again and keeps those that reach new blocks, halving the group to find them. */
  const locate = async (inputs: Buffer[]): Promise<void> => {
    for (const input of inputs) run(input);
    const added = await fresh();
    if (added.length === 0) return;
    if (inputs.length === 1) {
      for (const k of added) seen.add(k);
      corpus.push(inputs[0]!);
      return;
    }
    const half = inputs.length >> 1;
    await locate(inputs.slice(0, half));
    await locate(inputs.slice(half));
  };
  // Taking the coverage costs far more than an input: batches grow while they find nothing new.
  let batchSize = 64;
  let runs = o.seeds.length;
  while (runs < o.count) {
    const batch: Buffer[] = [];
    for (let i = 0; i < batchSize && runs + i < o.count; i++) batch.push(mutate(corpus[Math.floor(r() * corpus.length)]!, r, corpus, o.dict, o.maxLength));
    for (const input of batch) run(input);
    runs += batch.length;
    const added = await fresh();
    if (added.length === 0) {
      batchSize = Math.min(4096, batchSize * 2);
      continue;
    }
    await locate(batch);
    for (const k of added) seen.add(k); // even when no single input reproduces it
    batchSize = 64;
  }
  await session.post('Profiler.stopPreciseCoverage');
  session.disconnect();
  return { runs, corpus: corpus.length - o.seeds.length, seedBlocks, blocks: seen.size, findings };
}

/** Runs the named target of test/lib/fuzz-child.ts in a child process (no coverage collection there). */
export function runGuided(target: string, count: number, seed: number): Promise<GuidedReport> {
  const env = { ...process.env };
  delete env.NODE_V8_COVERAGE;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...TS_NODE_ARGS, join(REPO, 'test/lib/fuzz-child.ts'), target, String(count), String(seed)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`fuzz child ${target} exited ${code}: ${err.slice(-2000)}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as GuidedReport);
      } catch {
        reject(new Error(`fuzz child ${target}: no report in ${JSON.stringify(out.slice(-500))} ${err.slice(-1000)}`));
      }
    });
  });
}
