/**
 * Runs the VCL provisioning module (adapters/vcl) under real `perl` through
 * test/adapters/vcl/fixtures/vcl-run.pl, which calls it as VCL's vcld does, with stand-ins for the
 * VCL classes it inherits (VCL is not installable here). The calls run in order in one process: one
 * provisioner object, as for one reservation.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

export const VCL_RUN = resolve(import.meta.dirname, '../fixtures/vcl-run.pl');

export interface VclCall {
  method: string;
  args?: unknown[];
  /** Data structure values changed before the call (image.pm's new image name). */
  set?: Record<string, string | number>;
}

export interface VclInput {
  /** VCL's variable table: `provisiond|api_url`, `provisiond|token`, ... */
  variables: Record<string, string>;
  /** The data structure: computer_node_name, image_name, image_reload_time, reservation_id, computer_id. */
  data: Record<string, string | number>;
  /** Give the module an OS module (its post_load and pre_capture calls are recorded). */
  os?: boolean;
  calls: VclCall[];
}

export interface VclOutput {
  initialized: boolean;
  results: Array<{ method: string; result: unknown; seconds: number }>;
  notify: Array<{ level: string; message: string }>;
  loadlog: Array<{ reservation: number; computer: number; state: string; info: string; time: number }>;
  lastcheck: Array<{ reservations: number[]; time: number }>;
  os: string[];
}

/** How the perl command runs: here by default, or inside a test namespace. */
export type PerlRunner = (args: string[], timeoutMs: number) => Promise<string>;

const execFileAsync = promisify(execFile);
const localPerl: PerlRunner = async (args, timeoutMs) => (await execFileAsync('perl', args, { timeout: timeoutMs, maxBuffer: 16 << 20 })).stdout;

/** Runs the calls; `fakeClock`: the module's time() and sleep() run on a fake clock (minutes in seconds). */
export async function runVcl(input: VclInput, opts: { fakeClock?: boolean; perl?: PerlRunner; timeoutMs?: number } = {}): Promise<VclOutput> {
  const dir = mkdtempSync(join(tmpdir(), 'pvd-vcl-'));
  try {
    const file = join(dir, 'input.json');
    writeFileSync(file, JSON.stringify(input));
    const args = [VCL_RUN, ...(opts.fakeClock ? ['--fake-clock'] : []), file];
    const out = await (opts.perl ?? localPerl)(args, opts.timeoutMs ?? 120_000);
    return JSON.parse(out) as VclOutput;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The result of the first call of `method`. */
export function resultOf(out: VclOutput, method: string, nth = 0): unknown {
  const r = out.results.filter((x) => x.method === method)[nth];
  if (!r) throw new Error(`no call of ${method} (#${nth}) in ${JSON.stringify(out.results)}`);
  return r.result;
}

/** The notify messages at `level` (WARNING, CRITICAL, OK, DEBUG), joined by newlines. */
export function messages(out: VclOutput, level?: string): string {
  return out.notify.filter((n) => !level || n.level === level).map((n) => n.message).join('\n');
}
