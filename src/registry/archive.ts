/**
 * Everything a registry holds, as plain records: what `provisiond db copy` moves from one backend
 * to another, and what a test compares after the copy. `dump` reads it all (oldest first where
 * order matters); `restore` writes it into an empty registry in one transaction, ids of the audit
 * log kept, so that nothing is half-copied and paging links stay valid.
 */
import type { ApiToken, AuditEntry, DeclinedAddress, GroupRecord, Lease, NodeRecord, TaskRecord, TimelineEvent, UnknownNode } from './types.js';

export interface RegistryDump {
  nodes: NodeRecord[];
  groups: GroupRecord[];
  leases: Lease[];
  declined: DeclinedAddress[];
  unknown: UnknownNode[];
  /** Every node's timeline, in time order. */
  events: TimelineEvent[];
  tokens: ApiToken[];
  /** Oldest first. */
  audit: AuditEntry[];
  /** Oldest first. */
  tasks: TaskRecord[];
}

/** A backend that can be read whole (both backends). */
export interface RegistryArchive {
  dump(): Promise<RegistryDump>;
}

/** A backend that can be filled whole (PostgreSQL: the target of `db copy`). */
export interface RegistryRestore {
  /** Writes `dump` into this registry, which must be empty; all or nothing. */
  restore(dump: RegistryDump): Promise<void>;
}

/** How many of each kind, for messages and checks. */
export function dumpCounts(d: RegistryDump): Record<keyof RegistryDump, number> {
  return {
    nodes: d.nodes.length,
    groups: d.groups.length,
    leases: d.leases.length,
    declined: d.declined.length,
    unknown: d.unknown.length,
    events: d.events.length,
    tokens: d.tokens.length,
    audit: d.audit.length,
    tasks: d.tasks.length,
  };
}

/** Every task of `list` (newest first, paged by id), oldest first. */
export async function allTasks(list: (o: { before?: string; limit: number }) => Promise<TaskRecord[]>): Promise<TaskRecord[]> {
  const out: TaskRecord[] = [];
  let before: string | undefined;
  for (;;) {
    const page = await list({ before, limit: 1000 });
    out.push(...page);
    if (page.length < 1000) break;
    before = page.at(-1)!.id;
  }
  return out.reverse();
}

/** Every audit entry of `list` (newest first, paged by id), oldest first. */
export async function allAudit(list: (o: { before?: number; limit: number }) => Promise<AuditEntry[]>): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  let before: number | undefined;
  for (;;) {
    const page = await list({ before, limit: 1000 });
    out.push(...page);
    if (page.length < 1000) break;
    before = page.at(-1)!.id;
  }
  return out.reverse();
}
