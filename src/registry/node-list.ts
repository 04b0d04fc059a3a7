/**
 * Parsing a list of nodes to import (pure: text in, entries out, errors naming file and line):
 *
 * - `ethers` format, as Perceus, dnsmasq and /etc/ethers use it: `MAC name` per line;
 * - CSV with a header line naming the columns: `nodeid,name,group,vnfs,ipaddr` and optionally
 *   `enabled`, `debug`, `desc`, `boot`, and `attrs.<key>` for attributes. An empty name is given the
 *   next free name of the pattern at import time.
 *
 * `#` starts a comment line in both; blank lines are skipped.
 */
import { isIPv4 } from 'node:net';
import { UsageError } from '../util/errors.js';
import { parseMac } from '../util/mac.js';
import { isPlainName } from '../util/names.js';
import type { NewNode } from './types.js';

/** An entry of the list: the node (its name null when it is to be generated) and its line number. */
export interface ListedNode {
  node: Omit<NewNode, 'name'> & { name: string | null };
  line: number;
}

const COLUMNS = new Set(['nodeid', 'name', 'group', 'vnfs', 'ipaddr', 'enabled', 'debug', 'desc', 'boot']);
const ALIASES: Record<string, string> = { mac: 'nodeid', hwaddr: 'nodeid', hostname: 'name', node: 'name', ip: 'ipaddr' };

export function parseNodeList(text: string, file: string): ListedNode[] {
  const lines = text.split(/\r?\n/);
  const fail = (line: number, msg: string): never => {
    throw new UsageError(`${file}:${line}: ${msg}`);
  };
  const first = lines.findIndex((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  if (first < 0) return [];
  const csv = lines[first]!.includes(',');
  let header: string[] = [];
  if (csv) {
    header = splitCsv(lines[first]!, () => fail(first + 1, 'unbalanced quotes')).map((h) => {
      const k = h.trim().toLowerCase();
      return ALIASES[k] ?? (k.startsWith('attrs.') ? `attrs.${h.trim().slice(6)}` : k);
    });
    for (const h of header) if (!COLUMNS.has(h) && !h.startsWith('attrs.')) fail(first + 1, `unknown column ${JSON.stringify(h)} (known: ${[...COLUMNS].join(', ')}, attrs.<key>)`);
    if (!header.includes('nodeid')) fail(first + 1, 'the header needs a nodeid column');
  }
  const out: ListedNode[] = [];
  for (let i = csv ? first + 1 : first; i < lines.length; i++) {
    const raw = lines[i]!;
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) continue;
    const lineNo = i + 1;
    const fields: Record<string, string> = {};
    if (csv) {
      const cells = splitCsv(raw, () => fail(lineNo, 'unbalanced quotes'));
      if (cells.length > header.length) fail(lineNo, `${cells.length} fields, but the header names ${header.length}`);
      header.forEach((h, j) => (fields[h] = (cells[j] ?? '').trim()));
    } else {
      const parts = raw.trim().split(/\s+/);
      if (parts.length !== 2) fail(lineNo, `expected "MAC name", got ${parts.length} field${parts.length === 1 ? '' : 's'}`);
      fields.nodeid = parts[0]!;
      fields.name = parts[1]!;
    }
    out.push({ node: toNode(fields, (msg) => fail(lineNo, msg)), line: lineNo });
  }
  return out;
}

function toNode(f: Record<string, string>, fail: (msg: string) => never): ListedNode['node'] {
  const nodeid = parseMac(f.nodeid ?? '');
  if (nodeid === null) fail(`invalid hardware address ${JSON.stringify(f.nodeid ?? '')}`);
  const name = f.name ? f.name : null;
  if (name !== null && !isPlainName(name)) fail(`invalid node name ${JSON.stringify(name)}: use letters, digits and . _ + - only`);
  const node: ListedNode['node'] = { name, nodeid: nodeid! };
  if (f.group) node.group = f.group;
  if (f.vnfs) node.vnfs = f.vnfs;
  if (f.ipaddr) {
    if (!isIPv4(f.ipaddr)) fail(`invalid ipaddr ${JSON.stringify(f.ipaddr)}: not an IPv4 address`);
    node.ipaddr = f.ipaddr;
  }
  if (f.enabled) {
    const v = f.enabled.toLowerCase();
    if (!['yes', 'no', 'true', 'false', '1', '0'].includes(v)) fail(`invalid enabled ${JSON.stringify(f.enabled)}: use yes or no`);
    node.enabled = ['yes', 'true', '1'].includes(v);
  }
  if (f.debug) {
    if (!/^\d+$/.test(f.debug)) fail(`invalid debug ${JSON.stringify(f.debug)}: use a whole number`);
    node.debug = Number(f.debug);
  }
  if (f.desc) node.desc = f.desc;
  if (f.boot) {
    if (f.boot !== 'pxe' && f.boot !== 'local') fail(`invalid boot ${JSON.stringify(f.boot)}: use pxe or local`);
    node.boot = f.boot as 'pxe' | 'local';
  }
  for (const [k, v] of Object.entries(f)) {
    if (k.startsWith('attrs.') && v !== '') (node.attrs ??= {})[k.slice(6)] = v;
  }
  return node;
}

/** One CSV line (RFC 4180 quoting, `""` for a quote inside a quoted field). */
function splitCsv(line: string, unbalanced: () => never): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      cells.push(cell);
      cell = '';
    } else cell += c;
  }
  if (quoted) unbalanced();
  cells.push(cell);
  return cells;
}
