/**
 * The task runner: stores each task committed before it starts it, runs it in the background,
 * persists every change before it emits it (`change`), and honours a cancel asked from any process
 * (it polls the task's `cancelRequested` in the registry). The daemon runs one for the admin API;
 * the CLI runs one for `power`, `reload` and `vnfs image`, so every such action is a task in the
 * registry. A runner started later takes over the tasks of a runner process that is gone (resume).
 *
 * Servers sharing one database (`shared`) queue what they are asked: any of them claims it
 * (registry.claimTasks, FOR UPDATE SKIP LOCKED), the one asked first of all, and each claims again
 * every second what is queued, left, or held by a server whose heartbeat stopped. Every write of a
 * running task is guarded by its runner: a runner whose task was claimed by another stops it.
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { TaskClaimLostError } from '../registry/errors.js';
import type { ClaimedTask, RegistryStore, TaskClaim, TaskRecord, TaskStatus, TimelineEvent } from '../registry/types.js';
import { NodeNotFoundError, ProvisiondError, UsageError, errorMessage } from '../util/errors.js';
import { vnfsExists } from '../vnfs/capsule.js';
import { TaskCancelledError, type Action, type RunContext } from './actions/context.js';
import { runBootdev, runPower } from './actions/power.js';
import { runDeploy } from './actions/deploy.js';
import { passedPower, runReload } from './actions/reload.js';
import { runVnfsImage } from './actions/vnfs-image.js';
import { runCapture } from './actions/capture.js';
import type { NodeActionBoard } from './node-actions.js';
import { removeStaging } from '../vnfs/capture.js';
import { selectNodes } from './nodes.js';
import { parseParams, type TaskAction, type TaskParams, type TaskRequest } from './params.js';
import { addMessage, finishNode, finishTask, isFinished, newTask } from './record.js';

export type { TaskAction, TaskRequest } from './params.js';

const ACTIONS: Record<TaskAction, Action<never>> = { power: runPower, bootdev: runBootdev, reload: runReload, deploy: runDeploy, 'vnfs-image': runVnfsImage, capture: runCapture };

/**
 * Actions that work in the statedir of the server asked (an image build, a capture the node uploads
 * to that server): servers sharing a database do not queue them for any server, the one asked runs them.
 */
const LOCAL_ACTIONS: ReadonlySet<string> = new Set<TaskAction>(['vnfs-image', 'capture']);

/** How often a running task looks for a cancel asked by another process, and `wait` polls. */
const POLL_MS = 250;

interface Running {
  task: TaskRecord;
  /** Fires on cancel. */
  cancel: AbortController;
  /** Fires on close (the task is left as it is in the registry). */
  stop: AbortController;
  persist: Persister;
  done: Promise<void>;
}

export interface TaskRunnerOptions {
  registry: RegistryStore;
  /** The config in force (follows reloads). */
  config: () => Config;
  log: Logger;
  /** `HOST:PID` (default), or `HOST:PID:TAG` for more than one runner in a process. */
  runnerId?: string;
  /**
   * Records a power step in a node's timeline (default: the registry's addEvent). The daemon passes
   * its recorder, so the steps also reach the event stream.
   */
  timeline?: (event: TimelineEvent) => void | Promise<void>;
  /** Where actions for nodes' ready agents are offered (the daemon's; a capture needs it). */
  actions?: NodeActionBoard;
  /**
   * Several servers on one database: tasks are queued for any server to claim, and those of a
   * server whose heartbeat is older than `leaseMs` are taken over. The runner id is the server's id
   * in the cluster. Without it, the runner runs what it is asked itself (one server, a CLI).
   */
  shared?: { leaseMs: number };
  /** Publishes an image a vnfs-image task built (the daemon's ImageSync); the task succeeds once it is committed. */
  imageBuilt?: (vnfs: string) => Promise<string>;
}

/** Emits `change` (task: TaskRecord) after every change is committed. */
export class TaskRunner extends EventEmitter {
  /** The runners open in this process, by id: a runner of this pid that is not here is gone. */
  static readonly #open = new Map<string, number>();
  readonly runnerId: string;
  readonly #registry: RegistryStore;
  readonly #config: () => Config;
  readonly #log: Logger;
  readonly #timeline: (event: TimelineEvent) => void | Promise<void>;
  readonly #running = new Map<string, Running>();
  readonly #actions: NodeActionBoard | null;
  readonly #imageBuilt: ((vnfs: string) => Promise<string>) | undefined;
  readonly #shared: { leaseMs: number } | null;
  /** Claims run one at a time: a task this runner claimed is not claimed again while it is started. */
  #claiming: Promise<void> = Promise.resolve();
  #resuming: Promise<void> | null = null;
  #closed = false;

  constructor({ registry, config, log, runnerId = `${hostname()}:${process.pid}`, timeline, actions, shared, imageBuilt }: TaskRunnerOptions) {
    super();
    // Every wait() listens while it waits; the daemon's event feed listens for good.
    this.setMaxListeners(0);
    if (!registry || typeof config !== 'function' || !log) throw new TypeError('TaskRunner needs { registry, config: () => Config, log }');
    if (!/^[^:]+:\d+(:.+)?$/.test(runnerId)) throw new TypeError(`TaskRunner runnerId ${JSON.stringify(runnerId)}: expected HOST:PID or HOST:PID:TAG`);
    this.#registry = registry;
    this.#config = config;
    this.#log = log;
    this.#timeline = timeline ?? ((e) => registry.addEvent(e));
    this.runnerId = runnerId;
    this.#actions = actions ?? null;
    this.#imageBuilt = imageBuilt;
    if (shared !== undefined && !(Number.isFinite(shared.leaseMs) && shared.leaseMs > 0)) throw new TypeError('TaskRunner shared.leaseMs: expected a positive number of ms');
    this.#shared = shared ?? null;
    TaskRunner.#open.set(runnerId, (TaskRunner.#open.get(runnerId) ?? 0) + 1);
  }

  /**
   * Validates (UsageError naming the bad parameter or the pattern that matches no node), resolves
   * the nodes, stores the task (queued, one TaskNode per node) committed, starts it in the
   * background, returns it. With an idempotency key the same caller used before: returns that task,
   * created=false, nothing started.
   */
  async submit(req: TaskRequest): Promise<{ task: TaskRecord; created: boolean }> {
    if (this.#closed) throw new ProvisiondError('the task runner is closed');
    if (typeof req.createdBy !== 'string' || req.createdBy === '') throw new UsageError('task: createdBy: expected who asks (a token name or cli:USER)');
    const config = this.#config();
    const p = parseParams(req.action, req.params);
    let nodes: string[] = [];
    if (p.action === 'vnfs-image' || p.action === 'deploy') {
      if (!vnfsExists(config.statedir, p.vnfs)) throw new UsageError(`${p.action}: params.vnfs ${JSON.stringify(p.vnfs)}: no such vnfs`);
    }
    if (p.action === 'capture' && vnfsExists(config.statedir, p.vnfs)) throw new UsageError(`capture: params.vnfs ${JSON.stringify(p.vnfs)}: vnfs ${p.vnfs} exists already`);
    if (p.action !== 'vnfs-image') {
      nodes = (await selectNodes(this.#registry, config, p.nodes)).map((n) => n.name);
      if (p.action === 'capture' && nodes.length !== 1) throw new UsageError(`capture: params.nodes: ${JSON.stringify(p.nodes[0])} names ${nodes.length} nodes: capture takes one`);
    }
    // A capture needs the daemon's node-facing server: a runner without one (the CLI's) stores it
    // queued for no runner, and the daemon's sweep takes it over and runs it. Servers sharing a
    // database queue every task but those of their own statedir: it is durable before any of them
    // claims it.
    const local = LOCAL_ACTIONS.has(p.action);
    const mine = this.#canRun(p.action) && (this.#shared === null || local);
    const fresh = newTask({ action: p.action, params: req.params, createdBy: req.createdBy, idempotencyKey: req.idempotencyKey ?? null, runner: mine ? this.runnerId : null, nodes, now: Date.now() });
    const stored = await this.#registry.putTask(fresh);
    if (stored.id !== fresh.id) return { task: stored, created: false };
    let answer = structuredClone(fresh);
    this.emit('change', answer);
    // Claimed as this server's (its heartbeat then holds it), before anything of it runs.
    if (mine && this.#shared) await this.#registry.claimTasks(this.runnerId, { left: [{ id: fresh.id, runner: this.runnerId }] });
    if (mine) this.#start(fresh, p, false);
    if (this.#shared && !mine) {
      // Claimed here at once, most often; if another server was quicker, or the claim fails, it runs there.
      await this.#claim({ unclaimed: true }).catch((err: unknown) => this.#log.warn({ task: fresh.id, err: errorMessage(err) }, 'tasks: claiming failed; another server or the next sweep claims it'));
      const now = this.#running.get(fresh.id)?.task;
      if (now) answer = structuredClone(now);
    }
    return { task: structuredClone(answer), created: true };
  }

  async get(id: string): Promise<TaskRecord | null> {
    return this.#registry.getTask(id);
  }

  list(o: { status?: TaskStatus[]; unfinished?: boolean; before?: string; limit?: number } = {}): Promise<TaskRecord[]> {
    return this.#registry.listTasks(o);
  }

  /**
   * Asks the task to stop: `terminating`, then `terminated` once its waits have ended and its driver
   * calls are aborted. A task run by another live process is told through the registry; one whose
   * runner is gone is ended here. A finished task is returned as it is. NodeNotFoundError: no such task.
   */
  async cancel(id: string, by: string): Promise<TaskRecord> {
    const mine = this.#running.get(id);
    if (mine) {
      this.#cancelled(mine, { by, at: Date.now() });
      await mine.persist.save();
      return structuredClone(mine.task);
    }
    // Written only if its runner is still the one read: a claim in between (another server) is read again.
    for (let attempt = 1; ; attempt++) {
      const task = await this.#registry.getTask(id);
      if (!task) throw new NodeNotFoundError(`no task ${JSON.stringify(id)}`);
      if (isFinished(task.status)) return task;
      task.cancelRequested ??= { by, at: Date.now() };
      if (this.#gone(task.runner)) {
        finishTask(task, 'terminated', `cancelled by ${task.cancelRequested.by}`);
      } else {
        task.status = 'terminating';
        addMessage(task, null, `cancel asked by ${by}`);
      }
      try {
        await this.#registry.putTask(task, { ifRunner: task.runner });
      } catch (err) {
        if (err instanceof TaskClaimLostError && attempt < 5) continue;
        throw err;
      }
      this.emit('change', structuredClone(task));
      return task;
    }
  }

  /**
   * Resolves when the task is terminated or complete; polls the registry, so it works across
   * processes. A task whose runner is gone is taken over first. Rejects on timeout or abort.
   */
  async wait(id: string, o: { signal?: AbortSignal; timeoutMs?: number; onProgress?: (t: TaskRecord) => void } = {}): Promise<TaskRecord> {
    const deadline = o.timeoutMs === undefined ? Infinity : Date.now() + o.timeoutMs;
    let seen = '';
    for (;;) {
      const task = this.#running.get(id)?.task ?? (await this.#registry.getTask(id));
      if (!task) throw new NodeNotFoundError(`no task ${JSON.stringify(id)}`);
      const now = JSON.stringify(task);
      if (now !== seen) {
        seen = now;
        o.onProgress?.(structuredClone(task));
      }
      if (isFinished(task.status)) return structuredClone(task);
      if (!this.#running.has(id) && this.#gone(task.runner) && !this.#closed) await this.#claim({ left: [{ id, runner: task.runner }] });
      if (o.signal?.aborted) throw new ProvisiondError(`waiting for task ${id}: interrupted`);
      if (Date.now() >= deadline) throw new ProvisiondError(`waiting for task ${id}: timed out (status ${task.status})`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.off('change', onChange);
          o.signal?.removeEventListener('abort', done);
          resolve();
        };
        const onChange = (t: TaskRecord): void => {
          if (t.id === id) done();
        };
        const timer = setTimeout(done, Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
        this.on('change', onChange);
        o.signal?.addEventListener('abort', done);
      });
    }
  }

  /**
   * At daemon start, and every few seconds: takes over the unfinished tasks whose runner process
   * is gone (and, shared, the queued ones and those of a server whose heartbeat stopped). A reload
   * whose nodes were past the power step goes on waiting for `ready`; anything mid-action (a power
   * call may or may not have happened) ends `terminated` with the reason.
   */
  resume(): Promise<void> {
    // A sweep still under way (a slow database) is not doubled.
    this.#resuming ??= this.#resumeOnce().finally(() => (this.#resuming = null));
    return this.#resuming;
  }

  async #resumeOnce(): Promise<void> {
    const left: Array<{ id: string; runner: string | null }> = [];
    let before: string | undefined;
    for (;;) {
      if (this.#closed) return;
      const page = await this.#registry.listTasks({ unfinished: true, before, limit: 200 });
      for (const task of page) if (!this.#running.has(task.id) && this.#gone(task.runner)) left.push({ id: task.id, runner: task.runner });
      if (page.length < 200) break;
      before = page.at(-1)!.id;
    }
    if (left.length > 0 || this.#shared) await this.#claim({ left, unclaimed: this.#shared !== null, leaseMs: this.#shared?.leaseMs, limit: left.length + 100 });
  }

  /** Claims what `claim` allows (atomically: no other runner gets the same task) and runs it. */
  #claim(claim: Omit<TaskClaim, 'skipActions'>): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.#closed) return;
      // Listed before this claim began: drop what this runner has started since.
      const left = claim.left?.filter((l) => !this.#running.has(l.id));
      const claimed = await this.#registry.claimTasks(this.runnerId, { ...claim, left, skipActions: this.#actions ? [] : ['capture'] });
      for (const c of claimed) await this.#adopt(c);
    };
    const next = this.#claiming.then(run, run);
    this.#claiming = next.catch(() => {});
    return next;
  }

  /** Stops watching; running tasks stay as they are in the registry (a later resume() takes them over). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const running = [...this.#running.values()];
    for (const r of running) r.stop.abort(new TaskCancelledError('the task runner closed'));
    await Promise.all(running.map((r) => r.done));
    const open = (TaskRunner.#open.get(this.runnerId) ?? 1) - 1;
    if (open > 0) TaskRunner.#open.set(this.runnerId, open);
    else TaskRunner.#open.delete(this.runnerId);
  }

  /**
   * True when the runner process of a task is known to be gone: none, this host's dead pid, or this
   * very id when the task is not among ours (a daemon restarted in the same process). Callers check
   * #running first.
   */
  #gone(runner: string | null): boolean {
    if (runner === null || runner === this.runnerId) return true;
    if (TaskRunner.#open.has(runner)) return false;
    const [host, pidText] = runner.split(':');
    if (host !== hostname()) return false;
    const pid = Number(pidText);
    if (pid === process.pid) return true;
    try {
      process.kill(pid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }

  /** Whether this runner can run an action (a capture needs the node action board). */
  #canRun(action: string): boolean {
    return action !== 'capture' || this.#actions !== null;
  }

  /** A task just claimed (its runner is this one in the registry): ends what cannot go on, starts the rest. */
  async #adopt({ task, from, why }: ClaimedTask): Promise<void> {
    if (this.#running.has(task.id)) return;
    const was = from ?? 'none';
    // What happened to the runner, for the messages: a server of the cluster that stopped
    // heartbeating (killed, or cut off from the database), or a process known to be gone.
    const lost =
      why === 'server-stopped'
        ? `the server ${was} stopped (no heartbeat for ${(this.#shared?.leaseMs ?? 0) / 1000} s)`
        : `its runner ${was} is gone`;
    // A queued task nobody had claimed is simply started here ("started by" says where).
    if (from !== null || task.status !== 'queued') addMessage(task, null, `taken over by ${this.runnerId}: ${lost}`);
    let p: TaskParams | null = null;
    try {
      p = parseParams(task.action, task.params);
    } catch (err) {
      finishTask(task, 'terminated', `cannot be resumed: ${errorMessage(err)}`);
    }
    const during = why === 'server-stopped' ? `the server ${was} stopped during the ${task.action}` : `the daemon restarted during the ${task.action}: the runner ${was} was gone`;
    if (p && task.cancelRequested) {
      finishTask(task, 'terminated', `cancelled by ${task.cancelRequested.by}`);
    } else if (p && why === 'server-stopped' && task.status === 'queued' && LOCAL_ACTIONS.has(p.action)) {
      // It was for the statedir of the server that stopped: running it here would build or capture in another.
      finishTask(task, 'terminated', `the server ${was} stopped before it ran this ${task.action}, which works in that server's statedir: ask again`);
    } else if (p && task.status !== 'queued' && p.action === 'capture') {
      // Its upload (if any) died with the daemon: nothing half-made stays, the node can be captured again.
      await removeStaging(this.#config().statedir, task.id).catch(() => {});
      for (const n of task.nodes) finishNode(task, n, 'failure', `${why === 'server-stopped' ? during : `the daemon restarted during the capture (runner ${was} gone)`}: its upload was lost and no vnfs was made; capture again`);
      finishTask(task, 'complete', why === 'server-stopped' ? during : 'the daemon restarted during the capture');
    } else if (p && task.status !== 'queued') {
      const reason = `${during}, so whether its ${task.action === 'vnfs-image' ? 'build finished' : 'power call happened'} is unknown`;
      for (const n of task.nodes) {
        if (isFinished(n.status) || ((task.action === 'reload' || task.action === 'deploy') && passedPower(n))) continue;
        finishNode(task, n, 'terminated', reason);
      }
      if (task.nodes.every((n) => isFinished(n.status))) finishTask(task, 'terminated', reason);
    }
    try {
      await this.#registry.putTask(task, { ifRunner: this.runnerId });
    } catch (err) {
      // Claimed again by another runner meanwhile (this one was thought stopped): it is theirs.
      this.#log.warn({ task: task.id, err: errorMessage(err) }, 'task: not taken over');
      return;
    }
    this.emit('change', structuredClone(task));
    this.#log.info({ task: task.id, action: task.action, status: task.status, from: was, why }, from === null && task.status === 'queued' ? 'task claimed' : 'task taken over');
    // A queued task had not started (its start is committed before any action): it starts now.
    // A runner closed meanwhile leaves it claimed: the others take it over once this server leaves.
    if (p && !isFinished(task.status) && !this.#closed) this.#start(task, p, task.status !== 'queued');
  }

  #start(task: TaskRecord, params: TaskParams, resumed: boolean): void {
    const persist = new Persister(task, this.#registry, this.runnerId, this.#log, (t) => this.emit('change', t), (c) => this.#cancelled(run, c), (to) =>
      run.stop.abort(new TaskCancelledError(`taken over by ${to ?? 'nobody'}`)),
    );
    const run: Running = { task, cancel: new AbortController(), stop: new AbortController(), persist, done: Promise.resolve() };
    this.#running.set(task.id, run);
    run.done = this.#run(run, params, resumed).finally(() => this.#running.delete(task.id));
  }

  async #run(run: Running, params: TaskParams, resumed: boolean): Promise<void> {
    const { task } = run;
    const signal = AbortSignal.any([run.cancel.signal, run.stop.signal]);
    // Another process may cancel: look for it in the registry while the task runs.
    const poll = setInterval(() => void run.persist.checkCancel(), POLL_MS);
    try {
      if (task.status === 'queued') {
        task.status = 'running';
        task.started = Date.now();
        addMessage(task, null, `started by ${this.runnerId}`);
      }
      await run.persist.save();
      if (signal.aborted) return;
      const ctx: RunContext = {
        task,
        params,
        registry: this.#registry,
        config: this.#config(),
        log: this.#log.child({ task: task.id }),
        signal,
        cancelledBy: () => task.cancelRequested?.by ?? null,
        timeline: this.#timeline,
        changed: () => (run.stop.signal.aborted ? Promise.resolve() : run.persist.save()),
        resumed,
        actions: this.#actions,
        imageBuilt: this.#imageBuilt,
      };
      try {
        await (ACTIONS[params.action] as Action)(ctx);
      } catch (err) {
        if (run.stop.signal.aborted) return;
        this.#log.error({ task: task.id, err: errorMessage(err) }, 'task failed');
        addMessage(task, null, errorMessage(err), true);
        if (task.nodes.length === 0) task.result = 'failure';
        for (const n of task.nodes) if (!isFinished(n.status)) finishNode(task, n, 'failure', errorMessage(err));
      }
      if (run.stop.signal.aborted) return;
      const by = task.cancelRequested?.by;
      if (by) finishTask(task, 'terminated', `cancelled by ${by}`);
      else finishTask(task, 'complete', 'the task ended before this node did');
      await run.persist.save();
    } finally {
      clearInterval(poll);
      await run.persist.idle();
    }
  }

  #cancelled(run: Running, c: { by: string; at: number }): void {
    if (run.task.cancelRequested === null) run.task.cancelRequested = c;
    if (isFinished(run.task.status) || run.cancel.signal.aborted) return;
    run.task.status = 'terminating';
    addMessage(run.task, null, `cancel asked by ${c.by}`);
    run.cancel.abort(new TaskCancelledError(`cancelled by ${c.by}`));
  }
}

/**
 * Writes one task's record: one write at a time, changes made during a write go in the next one
 * (so a storm of node updates costs a few writes, not one each). Before each write it adopts a
 * cancel another process stored; each `change` is emitted only once its write is committed.
 */
class Persister {
  #writing: Promise<void> | null = null;
  #dirty = false;

  constructor(
    private readonly task: TaskRecord,
    private readonly registry: RegistryStore,
    private readonly runner: string,
    private readonly log: Logger,
    private readonly emit: (t: TaskRecord) => void,
    private readonly onCancel: (c: { by: string; at: number }) => void,
    private readonly onLost: (to: string | null) => void,
  ) {}

  /** Resolves once the record as it is now is committed. */
  save(): Promise<void> {
    this.#dirty = true;
    this.#writing ??= this.#loop().finally(() => (this.#writing = null));
    return this.#writing;
  }

  /** Resolves when no write is in flight. */
  async idle(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  async checkCancel(): Promise<void> {
    if (this.task.cancelRequested || isFinished(this.task.status)) return;
    const stored = await this.registry.getTask(this.task.id).catch(() => null);
    if (stored?.cancelRequested) {
      this.onCancel(stored.cancelRequested);
      await this.save();
    }
  }

  async #loop(): Promise<void> {
    while (this.#dirty) {
      this.#dirty = false;
      try {
        if (!this.task.cancelRequested && !isFinished(this.task.status)) {
          const stored = await this.registry.getTask(this.task.id);
          if (stored?.cancelRequested) this.onCancel(stored.cancelRequested);
        }
        const snapshot = structuredClone(this.task);
        await this.registry.putTask(snapshot, { ifRunner: this.runner });
        this.emit(snapshot);
      } catch (err) {
        if (err instanceof TaskClaimLostError) {
          // Another server claimed it (this one was thought stopped): it is theirs, this one stops.
          this.log.warn({ task: this.task.id, runner: err.runner }, `task: taken over by ${err.runner ?? 'nobody'}, stopping it here`);
          this.#dirty = false;
          this.onLost(err.runner);
          return;
        }
        this.log.warn({ task: this.task.id, err: errorMessage(err) }, 'task: writing its record failed');
      }
    }
  }
}
