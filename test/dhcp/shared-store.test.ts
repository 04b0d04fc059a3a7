/**
 * Two DHCP engines (two servers, server ids 10.0.0.1 and 10.0.0.2) on one PostgreSQL lease store,
 * each with its own cached registry as the daemon opens it: no address is ACKed to two clients, a
 * server that loses a claim NAKs (the client starts over), a lease made on one server is renewed or
 * INIT-REBOOTed on the other with the same address, a late answer cannot move a client the other
 * bound meanwhile, and a release on one frees the address on the other. The crowd of real clients on three daemons is test/dhcp/multi-server.test.ts.
 */
import t from 'tap';
import { silentLogger } from '../../src/log/logger.js';
import { MessageType } from '../../src/protocol/dhcp/constants.js';
import { getMessageType } from '../../src/protocol/dhcp/options.js';
import { PgRegistry } from '../../src/registry/postgres/registry.js';
import { DhcpEngine, type Arrival } from '../../src/servers/dhcp/engine.js';
import { Pool, ipToInt } from '../../src/servers/dhcp/pool.js';
import type { DhcpServerOptions } from '../../src/servers/dhcp/types.js';
import { postgresMissing, startPostgres } from '../lib/postgres.js';
import { clientPacket, type ClientSpec } from './packets.js';

const missing = postgresMissing();
const mac = (i: number): string => `52:54:00:77:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`.toUpperCase();

async function within(ms: number, check: () => boolean): Promise<boolean> {
  const t0 = Date.now();
  for (let i = 0; i < 500 && Date.now() - t0 < ms; i++) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return check();
}

t.test('two servers on one PostgreSQL', { skip: missing }, async (t) => {
  const pg = await startPostgres(t);
  const url = await pg.createDatabase(t);

  async function server(id: string, range: [string, string]) {
    const reg = await PgRegistry.open({ url, logger: silentLogger(), poolSize: 8, cache: true });
    t.teardown(() => reg.close());
    const opts: DhcpServerOptions = {
      mode: 'server',
      interface: null,
      serverAddress: id,
      pools: [{ network: '10.0.0.0/24', range, router: '10.0.0.1', dns: [], domain: null, interface: null }],
      leaseTime: 600,
      allocator: 'random',
      handler: { decide: async () => ({ answer: true, hostname: null, boot: null }) },
      leases: reg,
      logger: silentLogger(),
    };
    const pools = opts.pools.map((p) => new Pool(p));
    const engine = new DhcpEngine(opts, pools, () => new Set([id]));
    // As DhcpServer.listen does: the other server's changes (everything read again after a lost
    // listening connection), then what is stored.
    const reload = async () => engine.reload(await reg.listLeases(), await reg.listDeclined());
    t.teardown(reg.onLeaseChange((c) => (c.kind === 'reload' ? void reload() : engine.remote(c))));
    engine.table.load(await reg.listLeases(), await reg.listDeclined());
    const arrival: Arrival = { iface: null, serverId: id, pool: pools[0]! };
    const send = (s: ClientSpec) => engine.handle(clientPacket(s), arrival);
    return { id, reg, engine, send };
  }
  const A = await server('10.0.0.1', ['10.0.0.10', '10.0.0.209']);
  const B = await server('10.0.0.2', ['10.0.0.10', '10.0.0.209']);

  t.test('both answer one crowd at once: no address ACKed twice, lost claims NAKed', async (t) => {
    // 150 clients in a pool of 200; each DISCOVER reaches both servers (a broadcast), the client
    // takes the first offer, and both see its REQUEST (also a broadcast).
    const acked = new Map<string, string>();
    let naks = 0;
    const client = async (i: number): Promise<void> => {
      for (let attempt = 0; attempt < 10; attempt++) {
        const [oa, ob] = await Promise.all([A.send({ mac: mac(i), type: MessageType.DISCOVER }), B.send({ mac: mac(i), type: MessageType.DISCOVER })]);
        const pick = i % 2 ? (oa ?? ob) : (ob ?? oa);
        if (!pick) continue;
        const serverId = pick === oa ? A.id : B.id;
        const answers = await Promise.all([A, B].map((s) => s.send({ mac: mac(i), type: MessageType.REQUEST, requested: pick.yiaddr, serverId })));
        const answer = answers.find((a) => a !== null) ?? null;
        if (answer && getMessageType(answer) === MessageType.ACK) {
          acked.set(mac(i), answer.yiaddr);
          return;
        }
        naks++;
      }
    };
    await Promise.all(Array.from({ length: 150 }, (_, i) => client(i)));
    t.equal(acked.size, 150, `every client bound (${naks} NAKs on the way)`);
    t.equal(new Set(acked.values()).size, acked.size, 'no address ACKed to two clients');
    const rows = (await A.reg.listLeases()).filter((l) => l.state === 'bound');
    t.same(new Map(rows.map((l) => [l.hwaddr, l.address])), acked, 'the database holds exactly the ACKed leases');
  });

  t.test('a claim lost in the database: NAK, and the holder is in the loser\'s table', async (t) => {
    // Two clients INIT-REBOOT at once for one free address, one on each server: neither table
    // knows of the other's client, the database decides.
    let free = 0x0a00000a;
    while (A.engine.table.byAddress(free) || B.engine.table.byAddress(free)) free++;
    const address = `10.0.0.${free & 255}`;
    const [ra, rb] = await Promise.all([
      A.send({ mac: mac(900), type: MessageType.REQUEST, requested: address }),
      B.send({ mac: mac(901), type: MessageType.REQUEST, requested: address }),
    ]);
    const types = [ra, rb].map((r) => (r ? getMessageType(r) : null));
    t.same(types.sort(), [MessageType.ACK, MessageType.NAK].sort(), 'one ACK, one NAK');
    t.equal(A.engine.stats.claimsLost + B.engine.stats.claimsLost >= 1, true, 'counted as a lost claim');
    const winner = ra && getMessageType(ra) === MessageType.ACK ? mac(900) : mac(901);
    t.ok(await within(1000, () => A.engine.table.byAddress(free)?.hwaddr === winner && B.engine.table.byAddress(free)?.hwaddr === winner), 'both tables name the winner');
  });

  t.test('a lease made on A is renewed and INIT-REBOOTed on B with the same address', async (t) => {
    const offer = await A.send({ mac: mac(500), type: MessageType.DISCOVER });
    const ack = await A.send({ mac: mac(500), type: MessageType.REQUEST, requested: offer!.yiaddr, serverId: A.id });
    t.equal(getMessageType(ack!), MessageType.ACK);
    const addr = ack!.yiaddr;
    t.ok(await within(1000, () => B.engine.table.byHwaddr(mac(500))?.address === addr), 'B learned the lease within 1 s');
    // INIT-REBOOT (no server id, requested address) reaches B only: A is down.
    const reboot = await B.send({ mac: mac(500), type: MessageType.REQUEST, requested: addr });
    t.equal(reboot && getMessageType(reboot), MessageType.ACK, 'B ACKs the INIT-REBOOT');
    t.equal(reboot?.yiaddr, addr, 'with the same address');
    // Rebinding (ciaddr, broadcast) on B; a DISCOVER on B offers the same address back.
    const rebind = await B.send({ mac: mac(500), type: MessageType.REQUEST, ciaddr: addr });
    t.equal(rebind && getMessageType(rebind), MessageType.ACK, 'B ACKs the rebinding');
    const again = await B.send({ mac: mac(500), type: MessageType.DISCOVER });
    t.equal(again?.yiaddr, addr, 'and offers it the same address');
    // A client asking B for an address A's client holds is NAKed.
    const steal = await B.send({ mac: mac(501), type: MessageType.REQUEST, requested: addr });
    t.equal(steal && getMessageType(steal), MessageType.NAK, 'another client asking for it is NAKed');
  });

  t.test("a late answer cannot move a client another server bound meanwhile (exclusive claim)", async (t) => {
    const expires = Date.now() + 600_000;
    await A.reg.putLease({ hwaddr: mac(800), address: '10.0.0.240', expires, state: 'bound' });
    // B answers an old REQUEST of the same client for another address, as if it had not heard yet.
    const late = B.reg.putLease({ hwaddr: mac(800), address: '10.0.0.241', expires, state: 'bound' }, { exclusive: true });
    t.match(await late.then(() => null, (e: unknown) => e), { claimLost: true, lease: { hwaddr: mac(800), address: '10.0.0.240' } }, 'refused, naming the binding that stands');
    t.equal((await A.reg.listLeases()).find((l) => l.hwaddr === mac(800))?.address, '10.0.0.240', 'the database keeps it');
  });

  t.test('a release on B frees the address on A', async (t) => {
    const offer = await B.send({ mac: mac(600), type: MessageType.DISCOVER });
    await B.send({ mac: mac(600), type: MessageType.REQUEST, requested: offer!.yiaddr, serverId: B.id });
    const addr = offer!.yiaddr;
    t.ok(await within(1000, () => A.engine.table.byHwaddr(mac(600))?.state === 'bound'));
    await B.send({ mac: mac(600), type: MessageType.RELEASE, ciaddr: addr, serverId: B.id });
    t.ok(await within(1000, () => A.engine.table.byHwaddr(mac(600))?.state === 'released'), 'A sees the release within 1 s');
  });

  t.test("a lease deleted while B's listening connection was down is gone from B once it reloads", async (t) => {
    const offer = await A.send({ mac: mac(700), type: MessageType.DISCOVER });
    await A.send({ mac: mac(700), type: MessageType.REQUEST, requested: offer!.yiaddr, serverId: A.id });
    t.ok(await within(1000, () => B.engine.table.byHwaddr(mac(700))?.state === 'bound'), 'B learned the lease');
    // Both servers' listening connections cut from the database side; the lease deleted meanwhile
    // (as an admin or the leader's reclamation would): its notification reaches nobody.
    const db = /@\/(\w+)/.exec(url)![1];
    await pg.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db}' AND application_name = 'provisiond listener'`);
    await A.reg.deleteLease(mac(700));
    t.ok(await within(8000, () => B.engine.table.byHwaddr(mac(700)) === undefined), 'B forgot it after reading the leases again');
    t.notOk(B.engine.table.byAddress(ipToInt(offer!.yiaddr)), 'and its address is free on B');
  });
});
