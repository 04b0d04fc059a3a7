/**
 * Runs the Drydock drivers (adapters/drydock/) under the real python3 through the stand-in of
 * Drydock's orchestrator and state manager (test/adapters/fixtures/drydock_standin.py): a plan of
 * actions on stdin, the tasks as Drydock holds them on stdout.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { resolve } from 'node:path';
import { REPO } from '../../lib/paths.js';

export const ADAPTER = resolve(REPO, 'adapters/drydock');
export const STANDIN = resolve(REPO, 'test/adapters/fixtures/drydock_standin.py');

export interface Message { message: string; error: boolean; context_type: string; context: string; ts: string }
export interface DTask {
  action: string;
  status: string;
  result: { status: string; successes: string[]; failures: string[]; messages: Message[] };
  subtasks: DTask[];
}
export interface Run { supported_actions: string[]; timeouts: Record<string, number>; oob_type_support: boolean | null; tasks: DTask[]; error?: string }
export interface Plan {
  driver: 'oob' | 'node';
  nodes: Array<Record<string, unknown> & { name: string }>;
  steps: Array<{ action: string; nodes?: string[]; design_ref?: string }>;
}

type Spawner = (cmd: string, args: string[], options: SpawnOptions) => ChildProcess;

/** Runs `plan`; `env` is the drivers' whole environment (with PATH). Killed after `timeoutMs`. */
export function drydock(plan: Plan, env: Record<string, string>, opts: { spawner?: Spawner; timeoutMs?: number } = {}): Promise<{ code: number | null; out: Run; stderr: string }> {
  const run = opts.spawner ?? ((cmd, args, o) => spawn(cmd, args, o));
  return new Promise((res, rej) => {
    const p = run('python3', [STANDIN, ADAPTER], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PYTHONDONTWRITEBYTECODE: '1', PROVISIOND_DRYDOCK_CONF: '/dev/null', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 240_000);
    p.on('error', rej);
    p.on('close', (code) => {
      clearTimeout(timer);
      try {
        res({ code, out: JSON.parse(stdout) as Run, stderr });
      } catch {
        rej(new Error(`the stand-in printed no JSON (exit ${code}): ${stdout}\n${stderr}`));
      }
    });
    p.stdin!.end(JSON.stringify(plan));
  });
}

/** Every status message of a task and its subtasks about `node`. */
export const messagesOf = (task: DTask, node: string): Message[] =>
  [...task.result.messages, ...task.subtasks.flatMap((s) => s.result.messages)].filter((m) => m.context === node);
