/**
 * Auto-registration for the PostgreSQL backend: an unknown machine gets the next free name of the
 * pattern. Several servers may register at once, so the choice of names is serialized in the
 * database (an advisory lock held for the transaction), and the unique name constraint stands
 * behind it. A boot storm's machines arriving in one turn of the event loop share one transaction.
 */
import type pg from 'pg';
import { nextFree } from '../../util/patterns.js';
import { NamePatternExhaustedError, type AutoRegisterOptions, type NodeRecord } from '../types.js';
import { checkNodeid, normalizeNewNode } from '../validate.js';
import { PgNodes } from './nodes.js';

interface PendingRegistration {
  mac: string;
  options: AutoRegisterOptions;
  resolve(result: { node: NodeRecord; created: boolean }): void;
  reject(err: unknown): void;
}

/** Any constant: the advisory lock that serializes the choice of names. */
const NAMES_LOCK = 0x70766e6d;

export abstract class PgAutoRegister extends PgNodes {
  private registrations: PendingRegistration[] = [];

  async autoRegister(nodeid: string, options: AutoRegisterOptions): Promise<{ node: NodeRecord; created: boolean }> {
    const mac = checkNodeid(nodeid);
    const known = await this.getNodeByNodeid(mac);
    if (known) return { node: known, created: false };
    return new Promise((resolve, reject) => {
      this.registrations.push({ mac, options, resolve, reject });
      if (this.registrations.length === 1) setImmediate(() => void this.registerPending());
    });
  }

  protected async registerPending(): Promise<void> {
    const batch = this.registrations;
    this.registrations = [];
    if (batch.length === 0) return;
    let results: Array<{ node: NodeRecord; created: boolean } | Error>;
    try {
      results = await this.tx(`auto-registering ${batch.length === 1 ? batch[0]!.mac : `${batch.length} machines`}`, async (c) => {
        await c.query('SELECT pg_advisory_xact_lock($1)', [NAMES_LOCK]);
        const taken = new Set((await c.query<{ name: string }>('SELECT name FROM nodes')).rows.map((r) => r.name));
        const out: Array<{ node: NodeRecord; created: boolean } | Error> = [];
        for (const r of batch) {
          try {
            out.push(await this.registerOne(c, r.mac, r.options, taken));
          } catch (err) {
            if (!(err instanceof NamePatternExhaustedError)) throw err;
            out.push(err);
          }
        }
        return out;
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

  private async registerOne(c: pg.PoolClient, mac: string, options: AutoRegisterOptions, taken: Set<string>): Promise<{ node: NodeRecord; created: boolean }> {
    const again = await this.nodeWhere(c, 'nodeid = $1', [mac]);
    if (again) return { node: again, created: false };
    const free = nextFree(options.nodeName, options.firstNode, options.totalNodes, (n) => taken.has(n));
    if (free === null) {
      const err = new NamePatternExhaustedError(
        `auto-registering ${mac}: no free name left in pattern ${options.nodeName} (from ${options.firstNode}` +
          `${options.totalNodes === null ? '' : `, ${options.totalNodes} names`}); raise defaults.totalNodes or widen defaults.nodeName`,
      );
      this.log.error({ nodeid: mac, pattern: options.nodeName }, err.message);
      throw err;
    }
    taken.add(free.name);
    // vnfs, enabled and debug stay unset so that the group's settings apply, then the defaults.
    const node = await this.insert(c, normalizeNewNode({ name: free.name, nodeid: mac, group: options.group }));
    this.log.info({ node: free.name, nodeid: mac, group: options.group }, 'node auto-registered');
    return { node, created: true };
  }
}
