/**
 * The order itself: no DHCPACK leaves before its lease is committed. The DHCP server and the SQLite
 * registry of the daemon, on loopback (a relay's path: requests carry giaddr, replies come back to
 * the relay's port), with the registry's test hook holding every commit until the test lets it go;
 * and a commit that fails (the database locked by another process) withholds the ACK until a retry
 * can be committed.
 */
import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import dgram from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log/logger.js';
import { MessageType } from '../../src/protocol/dhcp/constants.js';
import { getMessageType } from '../../src/protocol/dhcp/options.js';
import { decodePacket, encodePacket, type DhcpPacket } from '../../src/protocol/dhcp/packet.js';
import { SqliteRegistry } from '../../src/registry/sqlite/registry.js';
import { DhcpServer } from '../../src/servers/dhcp/server.js';
import { clientPacket } from './packets.js';

const dir = mkdtempSync(join(tmpdir(), 'pvd-commit-order-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const PORT = 20000 + (process.pid % 20000);
const SERVER = '127.0.0.2';
const RELAY = '127.0.0.1';

/** A relay's socket: sends client packets with giaddr, and collects the replies with their arrival time. */
async function relay(t: Test) {
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => sock.bind(PORT, RELAY, () => r()));
  t.teardown(() => sock.close());
  const replies: Array<{ p: DhcpPacket; at: number }> = [];
  sock.on('message', (msg) => replies.push({ p: decodePacket(msg), at: Date.now() }));
  return {
    send: (p: DhcpPacket) => new Promise<void>((r) => sock.send(encodePacket(p), PORT, SERVER, () => r())),
    got: (xid: number, type: MessageType) => replies.find((r) => r.p.xid === xid && getMessageType(r.p) === type) ?? null,
  };
}

async function until<T>(f: () => T | null, ms: number): Promise<T | null> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== null || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
}

function start(t: Test, name: string, opts: { beforeCommit?: () => Promise<void>; busyTimeout?: number; leaseJournal?: boolean } = {}) {
  const path = join(dir, `${name}.db`);
  const registry = SqliteRegistry.open({ path, logger: silentLogger(), ...opts });
  const server = new DhcpServer({
    mode: 'server',
    interface: null,
    listen: SERVER,
    port: PORT,
    serverAddress: SERVER,
    pools: [{ network: '127.0.0.0/8', range: ['127.0.5.1', '127.0.5.50'], router: null, dns: [], domain: null, interface: null }],
    leaseTime: 600,
    handler: { decide: async () => ({ answer: true, hostname: null, boot: null }) },
    leases: registry,
    logger: silentLogger(),
  });
  t.teardown(async () => {
    await server.close();
    await registry.close();
  });
  const inDb = (mac: string): string | null => {
    const db = new Database(path, { readonly: true });
    try {
      return (db.prepare('SELECT address FROM leases WHERE hwaddr = ?').pluck().get(mac) as string | undefined) ?? null;
    } finally {
      db.close();
    }
  };
  /** The lines of the daemon's lease journal (journal.ts) that name `mac`. */
  const inJournal = (mac: string): string[] =>
    readdirSync(dir)
      .filter((f) => f.startsWith(`${name}.db.leases.`))
      .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n'))
      .filter((l) => l.includes(mac));
  return { registry, server, path, inDb, inJournal };
}

t.test('no ACK leaves before the commit of its lease; OFFERs do not wait', async (t) => {
  let open: (() => void) | null = null;
  let held: Promise<void> | null = null;
  let releasedAt = 0;
  const { server, inDb } = start(t, 'held', { beforeCommit: () => held ?? Promise.resolve() });
  await server.listen();
  const r = await relay(t);
  const mac = '52:54:00:C0:FF:EE';

  held = new Promise<void>((res) => (open = res));
  const d = clientPacket({ mac, type: MessageType.DISCOVER, giaddr: RELAY });
  await r.send(d);
  const offer = await until(() => r.got(d.xid, MessageType.OFFER), 3000);
  t.ok(offer, 'the OFFER comes while commits are held: offers need no commit');

  const req = clientPacket({ mac, type: MessageType.REQUEST, xid: d.xid, giaddr: RELAY, requested: offer!.p.yiaddr, serverId: SERVER });
  await r.send(req);
  t.equal(await until(() => r.got(d.xid, MessageType.ACK), 800), null, 'no ACK while the commit is held');
  t.equal(inDb(mac), null, 'and the lease is not in the database yet');
  t.equal(server.stats.acks, 0);

  releasedAt = Date.now();
  open!();
  held = null;
  const ack = await until(() => r.got(d.xid, MessageType.ACK), 3000);
  t.ok(ack, 'the ACK leaves once the commit is let go');
  t.ok(ack!.at >= releasedAt, `it arrived ${ack!.at - releasedAt} ms after the commit was let go`);
  t.equal(inDb(mac), offer!.p.yiaddr, 'the lease it acknowledges is in the database');
});

t.test('a commit that fails withholds the ACK; the retransmitted REQUEST is ACKed once it commits', async (t) => {
  const { server, path, inDb } = start(t, 'locked', { busyTimeout: 200 });
  await server.listen();
  const r = await relay(t);
  const mac = '52:54:00:DE:AD:01';
  const d = clientPacket({ mac, type: MessageType.DISCOVER, giaddr: RELAY });
  await r.send(d);
  const offer = await until(() => r.got(d.xid, MessageType.OFFER), 3000);
  t.ok(offer);

  // Another process (an admin's long command) holds the database's write lock.
  const other = new Database(path);
  other.prepare('BEGIN IMMEDIATE').run();
  const req = clientPacket({ mac, type: MessageType.REQUEST, xid: d.xid, giaddr: RELAY, requested: offer!.p.yiaddr, serverId: SERVER });
  await r.send(req);
  t.equal(await until(() => r.got(d.xid, MessageType.ACK), 1500), null, 'no ACK for a lease that could not be committed');
  t.equal(server.stats.uncommitted, 1, 'counted as uncommitted');
  other.prepare('ROLLBACK').run();
  other.close();

  // The client retransmits its REQUEST, as RFC 2131 clients do.
  await r.send(req);
  const ack = await until(() => r.got(d.xid, MessageType.ACK), 3000);
  t.ok(ack, 'the retransmission is ACKed once the lock is gone');
  t.equal(inDb(mac), offer!.p.yiaddr, 'and its lease is committed');
});

t.test('with the lease journal (the daemon): no ACK leaves before its line is written; a locked database does not hold it', async (t) => {
  let open: (() => void) | null = null;
  let held: Promise<void> | null = null;
  const { server, path, inJournal, inDb } = start(t, 'journal', { leaseJournal: true, busyTimeout: 200, beforeCommit: () => held ?? Promise.resolve() });
  await server.listen();
  const r = await relay(t);
  const mac = '52:54:00:C0:FF:EF';

  held = new Promise<void>((res) => (open = res));
  const d = clientPacket({ mac, type: MessageType.DISCOVER, giaddr: RELAY });
  await r.send(d);
  const offer = await until(() => r.got(d.xid, MessageType.OFFER), 3000);
  t.ok(offer, 'the OFFER comes while the journal is held');
  const req = clientPacket({ mac, type: MessageType.REQUEST, xid: d.xid, giaddr: RELAY, requested: offer!.p.yiaddr, serverId: SERVER });
  await r.send(req);
  t.equal(await until(() => r.got(d.xid, MessageType.ACK), 800), null, 'no ACK while the journal write is held');
  t.same(inJournal(mac), [], 'and the lease is not in the journal yet');
  const releasedAt = Date.now();
  open!();
  held = null;
  const ack = await until(() => r.got(d.xid, MessageType.ACK), 3000);
  t.ok(ack, 'the ACK leaves once the write is let go');
  t.ok(ack!.at >= releasedAt, `it arrived ${ack!.at - releasedAt} ms after the write was let go`);
  t.equal(inJournal(mac).length, 1, 'the lease it acknowledges is in the journal');
  t.match(inJournal(mac)[0], offer!.p.yiaddr, 'with its address');
  t.equal(await until(() => inDb(mac), 3000), offer!.p.yiaddr, 'and reaches the tables with the next batch');

  // An admin's long command holds the database: the journal does not need it, the ACK goes out.
  const mac2 = '52:54:00:C0:FF:F0';
  const other = new Database(path);
  other.prepare('BEGIN IMMEDIATE').run();
  let addr2: string | null = null;
  try {
    const d2 = clientPacket({ mac: mac2, type: MessageType.DISCOVER, giaddr: RELAY });
    await r.send(d2);
    const offer2 = await until(() => r.got(d2.xid, MessageType.OFFER), 3000);
    t.ok(offer2);
    addr2 = offer2!.p.yiaddr;
    await r.send(clientPacket({ mac: mac2, type: MessageType.REQUEST, xid: d2.xid, giaddr: RELAY, requested: addr2, serverId: SERVER }));
    t.ok(await until(() => r.got(d2.xid, MessageType.ACK), 1500), 'ACKed while the database is locked: the lease is in the journal');
    t.equal(inJournal(mac2).length, 1);
    t.equal(inDb(mac2), null, 'not in the tables while they are locked');
  } finally {
    other.prepare('ROLLBACK').run();
    other.close();
  }
  t.equal(await until(() => inDb(mac2), 5000), addr2, 'it reaches the tables once the lock is gone');
});
