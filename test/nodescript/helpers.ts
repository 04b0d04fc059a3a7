/** Fixtures for the nodescript tests: the node and master contexts, and reading a script's output (statedirs: test/lib/statedir.ts). */
import { Readable } from 'node:stream';
import type { MasterContext, NodeContext } from '../../src/nodescript/index.js';

export function node(over: Partial<NodeContext> = {}): NodeContext {
  return { state: 'init', nodename: 'n0001', nodeid: '52:54:00:12:34:56', group: 'compute', vnfs: 'centos', enabled: true, debug: 0, ipaddr: '10.0.0.101', ...over };
}

export function master(statedir: string, over: Partial<MasterContext> = {}): MasterContext {
  return { statedir, vnfsMethod: 'http', vnfsMaster: '10.0.0.1:8080', vnfsPrefix: 'files', readyInterval: 300, ...over };
}

export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks);
}
