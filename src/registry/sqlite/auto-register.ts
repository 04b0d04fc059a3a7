/**
 * Auto-registration for the SQLite backend: an unknown machine gets the next free name of the
 * pattern. A boot storm brings hundreds at once: those arriving in the same turn of the event loop
 * are registered in one transaction, and a hint spares rescanning the names already taken.
 */
import { nextFree } from '../../util/patterns.js';
import { NamePatternExhaustedError, type AutoRegisterOptions, type NodeRecord } from '../types.js';
import { checkNodeid, normalizeNewNode } from '../validate.js';
import { SqliteNodes } from './nodes.js';

interface PendingRegistration {
  mac: string;
  options: AutoRegisterOptions;
  resolve(result: { node: NodeRecord; created: boolean }): void;
  reject(err: unknown): void;
}

export abstract class SqliteAutoRegister extends SqliteNodes {
  async autoRegister(nodeid: string, options: AutoRegisterOptions): Promise<{ node: NodeRecord; created: boolean }> {
    const mac = checkNodeid(nodeid);
    this.syncHot();
    const known = this.index.byNodeid.get(mac);
    if (known) return { node: known, created: false };
    // A boot storm brings hundreds of unknown machines at once: those arriving in the same turn of
    // the event loop are registered in one transaction (one commit instead of one each).
    return new Promise((resolve, reject) => {
      this.registrations.push({ mac, options, resolve, reject });
      if (this.registrations.length === 1) setImmediate(() => this.registerPending());
    });
  }

  private registrations: PendingRegistration[] = [];
  private nameHints = new Map<string, { generation: number; n: number }>();

  protected registerPending(): void {
    const batch = this.registrations;
    this.registrations = [];
    if (batch.length === 0) return;
    const results: Array<{ node: NodeRecord; created: boolean } | Error> = [];
    try {
      this.write(`auto-registering ${batch.length === 1 ? batch[0]!.mac : `${batch.length} machines`}`, () => {
        results.length = 0;
        for (const r of batch) {
          try {
            results.push(this.registerOne(r.mac, r.options));
          } catch (err) {
            if (!(err instanceof NamePatternExhaustedError)) throw err;
            results.push(err);
          }
        }
      });
    } catch (err) {
      for (const r of batch) r.reject(err);
      return;
    }
    batch.forEach((r, i) => {
      const result = results[i]!;
      if (result instanceof Error) r.reject(result);
      else r.resolve(result);
    });
  }

  /** One registration, inside the write transaction. */
  private registerOne(mac: string, options: AutoRegisterOptions): { node: NodeRecord; created: boolean } {
    const again = this.index.byNodeid.get(mac);
    if (again) return { node: again, created: false };
    // Every number below the hint was taken when it was set; a delete or rename (here or by another
    // process: a new index generation) may free one, so the hint only holds for its generation.
    const key = `${options.nodeName}\0${options.firstNode}`;
    const hint = this.nameHints.get(key);
    const from = hint && hint.generation === this.generation ? hint.n : options.firstNode;
    const free = nextFree(options.nodeName, options.firstNode, options.totalNodes, (n) => this.index.nodes.has(n), from);
    const name = free?.name ?? null;
    if (free) this.nameHints.set(key, { generation: this.generation, n: free.n + 1 });
    if (name === null) {
      const err = new NamePatternExhaustedError(
        `auto-registering ${mac}: no free name left in pattern ${options.nodeName} (from ${options.firstNode}` +
          `${options.totalNodes === null ? '' : `, ${options.totalNodes} names`}); raise defaults.totalNodes or widen defaults.nodeName`,
      );
      this.log.error({ nodeid: mac, pattern: options.nodeName }, err.message);
      throw err;
    }
    // vnfs, enabled and debug stay unset so that the group's settings apply, then the defaults.
    const node = this.insert(normalizeNewNode({ name, nodeid: mac, group: options.group }));
    this.log.info({ node: name, nodeid: mac, group: options.group }, 'node auto-registered');
    return { node, created: true };
  }

}
