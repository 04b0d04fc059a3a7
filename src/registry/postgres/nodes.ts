/**
 * The node methods of the PostgreSQL backend: reads straight from the database, admin writes in one
 * transaction each (the node row locked with FOR UPDATE, so that two servers changing one node
 * serialize), contacts as single UPDATEs that resolve once committed.
 */
import type pg from 'pg';
import { parseMac } from '../../util/mac.js';
import { ImportEntryError } from '../errors.js';
import { resolveNode, type ResolveDefaults } from '../resolve.js';
import type { NewNode, NodeRecord, NodeUpdate, ResolvedNode } from '../types.js';
import { checkName, checkNodeid, checkNodeUpdate, mergeAttrs, normalizeImport, normalizeNewNode } from '../validate.js';
import { PgCore } from './core.js';
import { GROUP_COLUMNS, groupFromRow, NODE_COLUMNS, nodeFromRow, nodeParams, type GroupRow, type NodeRow } from './rows.js';

const INSERT_NODE = `INSERT INTO nodes (${NODE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`;
const UPDATE_NODE = `UPDATE nodes SET (${NODE_COLUMNS}) = ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) WHERE name = $16`;

export abstract class PgNodes extends PgCore {
  async getNode(name: string): Promise<NodeRecord | null> {
    this.assertOpen();
    return this.hot('reading a node', (ix) => ix.nodes.get(name) ?? null, () => this.read('reading a node', 'name = $1', [name]));
  }

  async getNodeByNodeid(nodeid: string): Promise<NodeRecord | null> {
    const mac = parseMac(nodeid);
    if (mac === null) return null;
    return this.hot('looking up a node', (ix) => ix.byNodeid.get(mac) ?? null, () => this.read('looking up a node', 'nodeid = $1', [mac]));
  }

  async getNodeByAddress(addr: string): Promise<NodeRecord | null> {
    return this.hot('looking up a node by address', (ix) => ix.nodeByAddress(addr), () => this.readByAddress(addr));
  }

  private async readByAddress(addr: string): Promise<NodeRecord | null> {
    // Its fixed address first, then a live lease (offered or bound) of an address not declined.
    const { rows } = await this.q<NodeRow>(
      'looking up a node by address',
      `SELECT ${NODE_COLUMNS} FROM nodes WHERE ipaddr = $1
       UNION ALL
       SELECT ${NODE_COLUMNS.replace(/(\w+)/g, 'n.$1')} FROM leases l JOIN nodes n ON n.nodeid = l.hwaddr
        WHERE l.address = $1 AND l.state IN ('offered', 'bound') AND NOT EXISTS (SELECT 1 FROM declined d WHERE d.address = $1)
       LIMIT 1`,
      [addr],
    );
    return rows[0] ? nodeFromRow(rows[0]) : null;
  }

  async listNodes(): Promise<NodeRecord[]> {
    const { rows } = await this.q<NodeRow>('listing nodes', `SELECT ${NODE_COLUMNS} FROM nodes ORDER BY id`);
    return rows.map(nodeFromRow);
  }

  private async read(what: string, where: string, params: unknown[]): Promise<NodeRecord | null> {
    const { rows } = await this.q<NodeRow>(what, `SELECT ${NODE_COLUMNS} FROM nodes WHERE ${where}`, params);
    return rows[0] ? nodeFromRow(rows[0]) : null;
  }

  async addNode(node: NewNode): Promise<NodeRecord> {
    const record = normalizeNewNode(node);
    return this.tx(`adding node ${record.name}`, (c) => this.insert(c, record));
  }

  /** Inserts a checked record inside a transaction; the machine is no longer unknown. */
  protected async insert(c: pg.PoolClient, record: NodeRecord): Promise<NodeRecord> {
    await this.assertFree(c, record);
    await c.query(INSERT_NODE, nodeParams(record));
    await c.query('DELETE FROM unknown WHERE nodeid = $1', [record.nodeid]);
    return record;
  }

  async importNodes(nodes: NewNode[]): Promise<number> {
    const records = normalizeImport(nodes);
    return this.tx(`importing ${records.length} nodes`, async (c) => {
      for (const [i, r] of records.entries()) {
        try {
          await this.insert(c, r);
        } catch (err) {
          throw new ImportEntryError(i, `entry ${i + 1} (${r.name}): ${(err as Error).message}`, { cause: err });
        }
      }
      return records.length;
    });
  }

  async updateNode(name: string, update: NodeUpdate): Promise<NodeRecord> {
    checkNodeUpdate(update);
    return this.tx(`updating node ${name}`, (c) => this.applyUpdate(c, name, update));
  }

  async updateNodes(names: string[], update: NodeUpdate): Promise<NodeRecord[]> {
    checkNodeUpdate(update);
    return this.tx(`updating ${names.length} nodes`, async (c) => {
      const out: NodeRecord[] = [];
      for (const name of names) out.push(await this.applyUpdate(c, name, update));
      return out;
    });
  }

  async claimNode(candidates: readonly string[], key: string, update: NodeUpdate): Promise<NodeRecord | null> {
    checkNodeUpdate(update);
    if (update.attrs?.[key] === undefined || update.attrs[key] === null) throw new TypeError(`claimNode: the update must set the attribute it claims (${key})`);
    if (candidates.length === 0) return null;
    return this.tx(`claiming a node (${key})`, async (c) => {
      // FOR UPDATE SKIP LOCKED: a row another claimer holds is skipped, and one it claimed and
      // committed meanwhile is checked again (its attribute now set) and passed over.
      const { rows } = await c.query<{ name: string }>(
        'SELECT name FROM nodes WHERE name = ANY($1::text[]) AND NOT (attrs ? $2) ORDER BY array_position($1::text[], name) LIMIT 1 FOR UPDATE SKIP LOCKED',
        [candidates, key],
      );
      return rows[0] ? this.applyUpdate(c, rows[0].name, update) : null;
    });
  }

  private async applyUpdate(c: pg.PoolClient, name: string, update: NodeUpdate): Promise<NodeRecord> {
    const old = await this.mustNode(c, name);
    const next: NodeRecord = { ...old };
    for (const k of ['group', 'vnfs', 'enabled', 'debug', 'ipaddr', 'desc', 'boot'] as const) {
      if (update[k] !== undefined) (next as unknown as Record<string, unknown>)[k] = update[k];
    }
    next.attrs = mergeAttrs(old.attrs, update.attrs);
    if (next.ipaddr !== old.ipaddr) await this.assertFree(c, { ipaddr: next.ipaddr }, name);
    await c.query(UPDATE_NODE, [...nodeParams(next), old.name]);
    return next;
  }

  async deleteNode(name: string): Promise<void> {
    await this.deleteNodes([name], `deleting node ${name}`);
  }

  async deleteNodes(names: string[], what = `deleting ${names.length} nodes`): Promise<void> {
    await this.tx(what, async (c) => {
      for (const name of names) {
        await this.mustNode(c, name);
        await c.query('DELETE FROM nodes WHERE name = $1', [name]);
      }
    });
  }

  async renameNode(oldName: string, newName: string): Promise<NodeRecord> {
    checkName(newName, 'node name');
    return this.tx(`renaming node ${oldName}`, async (c) => {
      const old = await this.mustNode(c, oldName);
      if (newName === oldName) return old;
      await this.assertFree(c, { name: newName });
      await c.query('UPDATE nodes SET name = $1 WHERE name = $2', [newName, oldName]);
      return { ...old, name: newName };
    });
  }

  async replaceNodeid(name: string, nodeid: string): Promise<NodeRecord> {
    const mac = checkNodeid(nodeid);
    return this.tx(`replacing the hardware address of node ${name}`, async (c) => {
      const old = await this.mustNode(c, name);
      if (old.nodeid === mac) return old;
      await this.assertFree(c, { nodeid: mac }, name);
      await c.query('UPDATE nodes SET nodeid = $1 WHERE name = $2', [mac, name]);
      // The new board inherits the node's history and its address.
      await c.query('UPDATE events SET nodeid = $1 WHERE nodeid = $2', [mac, old.nodeid]);
      await c.query('DELETE FROM leases WHERE hwaddr = $1', [mac]);
      await c.query('UPDATE leases SET hwaddr = $1 WHERE hwaddr = $2', [mac, old.nodeid]);
      await c.query('DELETE FROM unknown WHERE nodeid = $1', [mac]);
      return { ...old, nodeid: mac };
    });
  }

  async recordContact(nodeid: string, state: string | null, addr: string | null, time = Date.now()): Promise<void> {
    const mac = parseMac(nodeid);
    if (mac === null) return;
    await this.serial(`node ${mac}`, () =>
      this.q('recording a contact', 'UPDATE nodes SET state = coalesce($2, state), lastaddr = coalesce($3, lastaddr), lastcontact = $4 WHERE nodeid = $1', [mac, state, addr, time]),
    );
    this.cache?.contact(mac, state, addr, time);
  }

  async recordBootImage(nodeid: string, vnfs: string, sha256: string): Promise<void> {
    const mac = parseMac(nodeid);
    if (mac === null) return;
    await this.serial(`node ${mac}`, () => this.q('recording a boot image', 'UPDATE nodes SET bootvnfs = $2, bootimage = $3 WHERE nodeid = $1', [mac, vnfs, sha256]));
    await this.cache?.sync();
  }

  async resolve(node: NodeRecord, defaults: ResolveDefaults): Promise<ResolvedNode> {
    const name = node.group ?? defaults.group;
    const group = await this.hot(
      'reading a group',
      (ix) => ix.groups.get(name) ?? null,
      async () => {
        const { rows } = await this.q<GroupRow>('reading a group', `SELECT ${GROUP_COLUMNS} FROM groups WHERE name = $1`, [name]);
        return rows[0] ? groupFromRow(rows[0]) : null;
      },
    );
    return resolveNode(node, group, defaults);
  }
}
