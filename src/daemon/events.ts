/**
 * Feeds the API's event hub from the daemon: timeline steps as they are recorded, node state
 * changes as nodes check in, task progress from the task runner. Events carry the node's name
 * (looked up in the registry's memory index) and are published in the order they happened.
 */
import type { EventHub } from '../api/events.js';
import type { NodeRecord, RegistryStore, TaskRecord, TimelineEvent } from '../registry/types.js';

export class EventFeed {
  #chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly hub: EventHub,
    private readonly registry: RegistryStore,
  ) {}

  /** In order, even though the name lookups are asynchronous. */
  #then(fn: () => Promise<void> | void): void {
    this.#chain = this.#chain.then(fn).catch(() => {});
  }

  timeline(e: TimelineEvent): void {
    this.#then(async () => {
      const node = await this.registry.getNodeByNodeid(e.nodeid).catch(() => null);
      this.hub.publish('timeline', node?.name ?? e.nodeid, { nodeid: e.nodeid, source: e.source, stage: e.stage, msg: e.msg, ok: e.ok, addr: e.addr ?? null }, e.time);
    });
  }

  contact({ node, state, addr }: { node: NodeRecord; state: string; addr: string }): void {
    const time = Date.now();
    this.#then(() => {
      this.hub.publish('node', node.name, { nodeid: node.nodeid, state, previous: node.state, addr, lastcontact: time }, time);
    });
  }

  task(t: TaskRecord): void {
    this.#then(() => {
      this.hub.publish(
        'task',
        null,
        {
          id: t.id,
          action: t.action,
          status: t.status,
          result: t.result,
          progressAt: t.progressAt,
          nodes: t.nodes.map((n) => n.node),
          phases: Object.fromEntries(t.nodes.map((n) => [n.node, { status: n.status, result: n.result, phase: n.phase }])),
        },
        t.progressAt ?? Date.now(),
      );
    });
  }
}
