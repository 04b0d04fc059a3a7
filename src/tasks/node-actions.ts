/**
 * Actions waiting for a node's ready agent (a capture, for now), and the one-time upload URLs they
 * hand out. A running task offers an action; the agent's long-poll (`GET /nodes/NODEID/actions`)
 * takes it at once; the upload that follows presents the action's token, which works once, for
 * that node, until it expires. In memory only: an action lives as long as the task that offered
 * it, and a task in flight when the daemon dies ends failed after the restart (runner.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';

export interface CaptureOffer {
  kind: 'capture';
  /** The task offering it. */
  task: string;
  /** The VNFS it makes. */
  vnfs: string;
  exclude: readonly string[];
  /** The one-time token of its upload URL. */
  token: string;
  /** When the upload URL stops working (ms). */
  expires: number;
  /** The agent took it (the task moves to its upload phase). */
  onTaken(): void;
  /** The node reports it could not make the upload (its tar failed): the task ends failed with `reason`. */
  fail(reason: string): void;
  /** The upload's body: resolves with what to tell the node, rejects with the reason it was refused. */
  receive(body: Readable, length: number | null): Promise<string>;
}

export type NodeAction = CaptureOffer;

/** Why an upload is refused: the HTTP status and the reason. */
export class UploadRefusedError extends Error {
  constructor(
    readonly status: 403 | 404 | 409 | 410,
    message: string,
  ) {
    super(message);
  }
}

export function newUploadToken(): string {
  return randomBytes(24).toString('hex');
}

interface Waiter {
  resolve(a: NodeAction | null): void;
}

export class NodeActionBoard {
  /** Actions not yet taken, by nodeid. */
  readonly #pending = new Map<string, NodeAction[]>();
  /** Actions taken whose upload may still come, by token. */
  readonly #uploads = new Map<string, { nodeid: string; action: NodeAction; used: boolean }>();
  readonly #waiters = new Map<string, Set<Waiter>>();

  /** Offers `action` to node `nodeid`: a long-poll open now gets it at once. Returns the withdrawal (the task ended). */
  offer(nodeid: string, action: NodeAction): () => void {
    const waiters = this.#waiters.get(nodeid);
    const first = waiters?.values().next().value;
    if (first) {
      waiters!.delete(first);
      this.#hand(nodeid, action);
      first.resolve(action);
    } else {
      this.#pending.set(nodeid, [...(this.#pending.get(nodeid) ?? []), action]);
    }
    return () => {
      const left = (this.#pending.get(nodeid) ?? []).filter((a) => a !== action);
      if (left.length) this.#pending.set(nodeid, left);
      else this.#pending.delete(nodeid);
      this.#uploads.delete(action.token);
    };
  }

  /** Whether node `nodeid` has an action waiting (not yet taken). */
  hasPending(nodeid: string): boolean {
    return (this.#pending.get(nodeid)?.length ?? 0) > 0;
  }

  /**
   * The next action for `nodeid`, waiting up to `waitMs` for one (null then); the action is the
   * agent's from here on: offered to no other poll.
   */
  take(nodeid: string, waitMs: number, signal?: AbortSignal): Promise<NodeAction | null> {
    const queued = this.#pending.get(nodeid);
    if (queued?.length) {
      const action = queued.shift()!;
      if (queued.length === 0) this.#pending.delete(nodeid);
      this.#hand(nodeid, action);
      return Promise.resolve(action);
    }
    if (waitMs <= 0 || signal?.aborted) return Promise.resolve(null);
    return new Promise((resolve) => {
      const set = this.#waiters.get(nodeid) ?? new Set<Waiter>();
      this.#waiters.set(nodeid, set);
      const done = (a: NodeAction | null): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', gone);
        set.delete(waiter);
        if (set.size === 0 && this.#waiters.get(nodeid) === set) this.#waiters.delete(nodeid);
        resolve(a);
      };
      const waiter: Waiter = { resolve: done };
      const gone = (): void => done(null);
      const timer = setTimeout(gone, waitMs);
      signal?.addEventListener('abort', gone);
      set.add(waiter);
    });
  }

  #hand(nodeid: string, action: NodeAction): void {
    this.#uploads.set(action.token, { nodeid, action, used: false });
    action.onTaken();
  }

  /**
   * The action whose upload URL `token` is, for node `nodeid`: once only, before it expires, for
   * the node it was offered to. Throws UploadRefusedError otherwise.
   */
  claim(nodeid: string, token: string, now = Date.now()): NodeAction {
    const slot = this.#uploads.get(token);
    if (!slot) throw new UploadRefusedError(404, 'no such upload URL (unknown, or its task ended)');
    if (slot.nodeid !== nodeid) throw new UploadRefusedError(403, 'this upload URL is not for this node');
    if (slot.used) throw new UploadRefusedError(409, 'this upload URL was used already (it works once)');
    if (now > slot.action.expires) throw new UploadRefusedError(410, 'this upload URL has expired');
    slot.used = true;
    return slot.action;
  }
}
