/**
 * Teardown that also runs when the process is interrupted: every namespace and process the e2e
 * harness creates registers a synchronous undo here. It runs at normal exit, on SIGINT/SIGTERM/SIGHUP
 * (Ctrl-C; tap's timeout sends SIGALRM) and on an uncaught error, so a failing or interrupted run never leaves a
 * QEMU process or a network namespace behind.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Undo = () => void;
const undos = new Map<number, Undo>();
let nextId = 1;
let installed = false;

/** Registers `undo` (synchronous, must not throw); returns a function that unregisters it. */
export function onCleanup(undo: Undo): () => void {
  install();
  const id = nextId++;
  undos.set(id, undo);
  return () => undos.delete(id);
}

/** Runs every registered undo, newest first. Safe to call more than once. */
export function runCleanup(): void {
  const all = [...undos.entries()].reverse();
  undos.clear();
  for (const [, undo] of all) {
    try {
      undo();
    } catch {}
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runCleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGALRM'] as const) {
    process.on(sig, () => {
      runCleanup();
      // Re-raise so the exit status says how we ended (130 for Ctrl-C) and tap sees the signal.
      process.removeAllListeners(sig);
      process.kill(process.pid, sig);
    });
  }
  // tap announces a timeout over IPC, then sends SIGALRM 0.5 s later and SIGKILL 0.5 s after that:
  // clean up at the announcement. Unref the channel again, or the listener would keep us alive.
  process.on('message', (msg: unknown) => {
    if (msg && typeof msg === 'object' && (msg as { tapAbort?: unknown }).tapAbort === 'timeout') runCleanup();
  });
  (process.channel as { unref?: () => void } | undefined)?.unref?.();
}

/** Kills a process (and its process group when it leads one) without throwing. */
export function killQuietly(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (!pid) return;
  try {
    process.kill(pid, signal);
  } catch {}
}

/** Runs a command synchronously, ignoring failure; for teardown paths only. */
export function runQuietly(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8' });
  } catch {
    return '';
  }
}

/**
 * A temp folder for a run (serial logs, the statedir, UEFI variable stores), removed at the end like
 * the namespaces, also when the run is interrupted. PVD_E2E_KEEP=1 keeps it for a post-mortem.
 */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (!process.env.PVD_E2E_KEEP) onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
