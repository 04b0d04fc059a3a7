/**
 * The boot-storm simulator's nodes (issue 22): each simulated node does, in order and with the real
 * clients' timings and retries, what a PXE-booting node does on the wire:
 *
 *   1. the PXE ROM's DHCP (DISCOVER/OFFER/REQUEST/ACK, PXE client options, broadcast flag;
 *      retransmits after 4, 8, 16, 32 s as the PXE specification has it);
 *   2. TFTP of the loader it was given (blksize 1468, tsize; a lost packet resent after 1, 2, 4, 8, 16 s);
 *   3. iPXE's own DHCP (user class iPXE; retransmits after 1, 2, 4, 8 s), then the iPXE script over HTTP,
 *      then its `kernel` and `initrd` URLs on one keep-alive connection. iPXE does not retry a failed
 *      download: the script goes to `:failed` and the node is lost, so a failure here is a lost node;
 *   4. the stage-1's udhcpc (`-t 4 -T 3`, vendor class `provisiond`), then `GET /nodescripts/init` with
 *      busybox wget; the stage-1 retries a failed attempt after 2, 4, 8 ... s, 8 attempts
 *      (initramfs/lib/provisiond/functions);
 *   5. the init script's node side up to the image: the credential it hands over, the `report` events
 *      the stage-1 and the scripts send (timeout 5 s, failures ignored), `getfile` of the image's
 *      sha256 sidecar and of the image (6 attempts, waits 1, 2, 4 ... s, nodescripts/init/all/00-init);
 *   6. the ready agent's first check-in (`GET /nodescripts/ready` with the credential) and its event.
 *
 * Every DHCP request sets the broadcast flag (PXE ROMs do; iPXE and udhcpc need not): the simulated
 * nodes share one interface, whose MAC is not theirs, so a reply unicast to a node's own MAC (as
 * dnsmasq sends them) would never reach it.
 *
 * Every address a node uses is its own lease's (the simulator's namespace holds the whole range, so
 * the server sees each node come from the address it leased). No node state is shared: the storm is
 * as many independent clients as nodes. Runs inside the client namespace (test/lib/storm/child.ts).
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { BulkConnection, type BulkAnswer } from './bulk.js';
import { Worker } from 'node:worker_threads';
import type { UdpAnswer, UdpRequest } from './udp-worker.js';
import { MessageType, Opt } from '../../../src/protocol/dhcp/constants.js';
import { decodePacket, encodePacket, type DhcpPacket } from '../../../src/protocol/dhcp/packet.js';
import { clientPacket, type ClientSpec } from '../../dhcp/packets.js';
import { getIpOption, getMessageType, getStringOption } from '../../../src/protocol/dhcp/options.js';

export const PHASES = ['dhcp', 'loader', 'ipxe', 'stage1', 'dhcp2', 'nodescripts', 'image', 'ready'] as const;
export type Phase = (typeof PHASES)[number];

export interface SimOptions {
  nodes: number;
  /** First three octets of the simulated MACs' prefix, e.g. `52:54:0a`; the node index fills the rest. */
  macPrefix: string;
  /** Nodes are powered on at random moments over this many ms (a power-on is never one instant). */
  spreadMs: number;
  /** Give up on the whole storm after this long (a hung server must not hang the caller). */
  deadlineMs: number;
  /** Progress on stderr every this many ms (0: none). */
  progressMs?: number;
}

export interface NodeResult {
  mac: string;
  ok: boolean;
  /** Where a lost node was lost, and why. */
  phase?: Phase;
  reason?: string;
  /** Duration of each phase reached (ms). */
  phases: Partial<Record<Phase, number>>;
  /** From power-on to the ready check-in answered (ms). */
  totalMs?: number;
  /** Retransmissions and retries the node needed. */
  dhcpRetransmits: number;
  tftpRetransmits: number;
  httpRetries: number;
  /** Why the node had to retry (a failed attempt it recovered from). */
  retryReasons: string[];
  bytes: number;
}

export interface StormReport {
  nodes: number;
  ready: number;
  failed: number;
  /** From the first power-on to the last node ready (ms; the deadline when some never were). */
  wallMs: number;
  phases: Record<string, { p50: number; p99: number; max: number; n: number }>;
  failures: Record<string, Record<string, number>>;
  retransmits: { dhcp: number; tftp: number; httpRetries: number };
  /** Retries nodes recovered from, by phase and reason. */
  retries: Record<string, number>;
  bytes: number;
  /** Boot time (power-on to ready) percentiles, ms. */
  boot: { p50: number; p99: number; max: number };
  /** The simulator's own event-loop delay (ms): when high, its nodes' timings are its own, not the server's. */
  simulatorLag: { p99: number; max: number };
}

class NodeLost extends Error {
  constructor(
    readonly phase: Phase,
    reason: string,
  ) {
    super(reason);
  }
}

/**
 * iPXE's `kernel` and `initrd` have no timeout of their own (`imgfetch --timeout` is not used by the
 * script): a held request waits, TCP keeps the connection. Ten minutes here, so that a hung server
 * still ends the run.
 */
const IPXE_TIMEOUT_MS = 600_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The UDP side (DHCP through one shared port-68 socket, TFTP), run by udp-worker.ts on a thread of
 * its own so that its timers keep time while the main thread reads HTTP bodies.
 */
class UdpSide {
  private next = 0;
  private readonly calls = new Map<number, (a: UdpAnswer) => void>();
  private constructor(private readonly worker: Worker) {
    worker.on('message', (a: UdpAnswer) => {
      const call = this.calls.get(a.id);
      this.calls.delete(a.id);
      call?.(a);
    });
  }

  static async open(): Promise<UdpSide> {
    const entry = new URL('./udp-worker.ts', import.meta.url);
    // Under tap its TypeScript loader reaches workers by itself; tsx's hooks must be registered in the
    // worker first (Node 20 runs no --import there).
    const underTap = process.execArgv.some((a) => a.includes('@tapjs/typescript'));
    const boot = `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register(); await import(${JSON.stringify(entry.href)});`;
    const worker = underTap ? new Worker(entry) : new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`));
    await new Promise<void>((resolve, reject) => {
      worker.once('error', reject);
      worker.once('message', (m: { ready?: boolean; fatal?: string }) => (m.ready ? resolve() : reject(new Error(`storm UDP worker: ${m.fatal}`))));
    });
    return new UdpSide(worker);
  }

  private call(r: DistributiveOmit<UdpRequest, 'id'>): Promise<UdpAnswer> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.calls.set(id, resolve);
      this.worker.postMessage({ ...r, id });
    });
  }

  /** Sends `req` and waits for a reply of one of `want` types, resending after each wait of `schedule`; null when every wait passed. */
  async exchange(req: DhcpPacket, want: number[], schedule: number[], stats: { dhcpRetransmits: number }): Promise<DhcpPacket | null> {
    const a = await this.call({ op: 'dhcp', packet: encodePacket(req), xid: req.xid, want, schedule });
    stats.dhcpRetransmits += a.retransmits;
    return 'reply' in a && a.reply ? decodePacket(Buffer.from(a.reply)) : null;
  }

  /** A TFTP read as a PXE ROM does it; returns the bytes received. */
  async tftp(local: string, server: string, file: string, stats: NodeResult): Promise<number> {
    const a = await this.call({ op: 'tftp', local, server, file });
    stats.tftpRetransmits += a.retransmits;
    if ('error' in a) throw new NodeLost('loader', a.error);
    return 'bytes' in a ? a.bytes : 0;
  }

  async close(): Promise<void> {
    this.worker.postMessage('close');
    await this.worker.terminate();
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/** What one client (PXE ROM, iPXE, udhcpc) puts in its packets; the MAC, type and transaction are dora's. */
type ClientFields = Omit<ClientSpec, 'mac' | 'type' | 'xid' | 'requested' | 'serverId'>;

/**
 * DISCOVER -> OFFER -> REQUEST -> ACK with the packets of test/dhcp/packets.ts (broadcast flag set).
 * Returns the ACK; a NAK restarts once, then the node is lost.
 */
async function dora(hub: UdpSide, mac: string, client: ClientFields, schedule: number[], phase: Phase, stats: NodeResult): Promise<DhcpPacket> {
  for (let round = 0; round < 2; round++) {
    const xid = randomBytes(4).readUInt32BE(0);
    const offer = await hub.exchange(clientPacket({ ...client, mac, type: MessageType.DISCOVER, xid }), [MessageType.OFFER], schedule, stats);
    if (!offer) throw new NodeLost(phase, 'no DHCP offer');
    const request = clientPacket({ ...client, mac, type: MessageType.REQUEST, xid, requested: offer.yiaddr, serverId: getIpOption(offer, Opt.SERVER_ID) ?? undefined });
    const ack = await hub.exchange(request, [MessageType.ACK, MessageType.NAK], schedule, stats);
    if (!ack) throw new NodeLost(phase, 'no DHCP ack');
    if (getMessageType(ack) === MessageType.ACK) {
      // The boot file: the `file` field, else option 67, else what the offer said.
      ack.file ||= getStringOption(ack, Opt.BOOTFILE) ?? offer.file;
      if (ack.siaddr === '0.0.0.0') ack.siaddr = offer.siaddr;
      return ack;
    }
  }
  throw new NodeLost(phase, 'DHCP NAK twice');
}

interface HttpAnswer {
  status: number;
  body: Buffer | null;
  bytes: number;
}

/** One GET from `local`; the body kept when `keep`. Rejects on a connection error or a stall of `timeoutMs`. */
function httpGet(url: string, local: string, opts: { headers?: Record<string, string>; keep?: boolean; timeoutMs: number }): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { localAddress: local, agent: false, headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (opts.keep) chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: opts.keep ? Buffer.concat(chunks) : null, bytes }));
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs, () => req.destroy(new Error(`no data for ${opts.timeoutMs / 1000} s`)));
    req.on('error', reject);
  });
}

const shellValue = (script: string, name: string): string | null => {
  const m = new RegExp(`^${name}='([^']*)'`, 'm').exec(script) ?? new RegExp(`^${name}=(\\S+?);?(\\s|$)`, 'm').exec(script);
  return m ? m[1]! : null;
};

/** The `i`th simulated MAC: `prefix` (three octets) then i + 1 in the last three, lowercase with colons. */
function macOf(prefix: string, i: number): string {
  const hex = (i + 1).toString(16).padStart(6, '0');
  return `${prefix}:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4)}`;
}

/** One node's boot, power-on to its first ready check-in. */
async function bootNode(hub: UdpSide, m: string): Promise<NodeResult> {
  const r: NodeResult = { mac: m, ok: false, phases: {}, dhcpRetransmits: 0, tftpRetransmits: 0, httpRetries: 0, retryReasons: [], bytes: 0 };
  const began = performance.now();
  let mark = began;
  const done = (phase: Phase) => {
    const now = performance.now();
    r.phases[phase] = now - mark;
    mark = now;
  };
  let current: Phase = 'dhcp';
  try {
    const pxe: ClientFields = { vendorClass: 'PXEClient:Arch:00000:UNDI:002001', arch: 0, uuid: randomBytes(16).toString('hex') };
    // 1. The PXE ROM.
    current = 'dhcp';
    const ack1 = await dora(hub, m, pxe, [4000, 8000, 16000, 32000], 'dhcp', r);
    const me = ack1.yiaddr;
    const tftpServer = ack1.siaddr !== '0.0.0.0' ? ack1.siaddr : getIpOption(ack1, 54)!;
    done('dhcp');
    // 2. The loader.
    current = 'loader';
    if (!ack1.file) throw new NodeLost('loader', 'no boot file in the DHCP answer');
    r.bytes += await hub.tftp(me, tftpServer, ack1.file, r);
    done('loader');
    // 3. iPXE: its DHCP, its script, the stage-1.
    current = 'ipxe';
    const ack2 = await dora(hub, m, { ...pxe, userClass: 'iPXE' }, [1000, 2000, 4000, 8000], 'ipxe', r);
    const scriptUrl = ack2.file.replace('${mac}', m).replace('${net0/mac}', m);
    if (!/^https?:/.test(scriptUrl)) throw new NodeLost('ipxe', `boot file ${scriptUrl} is not an HTTP URL`);
    const script = await httpGet(scriptUrl, ack2.yiaddr, { keep: true, timeoutMs: IPXE_TIMEOUT_MS }).catch((e: Error) => {
      throw new NodeLost('ipxe', `iPXE script: ${e.message}`);
    });
    if (script.status !== 200) throw new NodeLost('ipxe', `iPXE script: HTTP ${script.status}`);
    r.bytes += script.bytes;
    const text = script.body!.toString();
    done('ipxe');
    current = 'stage1';
    const kernel = /^kernel\s+(\S+)/m.exec(text)?.[1];
    const initrd = /^initrd\s+(\S+)/m.exec(text)?.[1];
    if (!kernel || !initrd) throw new NodeLost('stage1', 'the iPXE script names no kernel or initrd');
    // Both on one keep-alive connection, as iPXE's connection pool does; iPXE sends a request again
    // on a new connection when a pooled one turns out closed, and otherwise has no retry: a failed
    // `kernel` or `initrd` goes to `:failed` and the node is lost.
    let conn: BulkConnection | null = null;
    try {
      for (const url of [kernel, initrd]) {
        const u = new URL(url);
        const fetchOnce = async (): Promise<BulkAnswer> => {
          if (!conn?.alive) conn = await BulkConnection.open(u.hostname, Number(u.port || 80), ack2.yiaddr, IPXE_TIMEOUT_MS);
          return conn.get(u.host, u.pathname + u.search);
        };
        const got = await fetchOnce()
          .catch(async (e: Error) => {
            if (!conn?.used) throw e;
            conn.close();
            conn = null;
            r.httpRetries++;
            r.retryReasons.push(`stage1: pooled connection closed (${e.message}): sent again`);
            return fetchOnce();
          })
          .catch((e: Error) => {
            throw new NodeLost('stage1', `${u.pathname.split('/').pop()}: ${e.message}`);
          });
        if (got.status !== 200) throw new NodeLost('stage1', `${u.pathname.split('/').pop()}: HTTP ${got.status}`);
        r.bytes += got.bytes;
      }
    } finally {
      (conn as BulkConnection | null)?.close();
    }
    done('stage1');
    // 4. The stage-1: udhcpc and the init nodescript, attempts with a doubling wait.
    const NODEID = m.toUpperCase();
    let wait = 2000;
    let initScript = '';
    let me2 = '';
    let master = '';
    for (let attempt = 1; ; attempt++) {
      try {
        current = 'dhcp2';
        if (!me2) {
          const ack3 = await dora(hub, m, { vendorClass: 'provisiond' }, [3000, 3000, 3000, 3000], 'dhcp2', r);
          me2 = ack3.yiaddr;
          master = `http://${getIpOption(ack3, 54)}:${new URL(scriptUrl).port || 80}`;
          done('dhcp2');
        }
        current = 'nodescripts';
        const init = await httpGet(`${master}/nodescripts/init?nodeid=${NODEID}`, me2, { keep: true, timeoutMs: 900_000 });
        r.bytes += init.bytes;
        if (init.status !== 200) throw new NodeLost('nodescripts', `init: HTTP ${init.status}`);
        initScript = init.body!.toString();
        if (!initScript.startsWith('#!')) throw new NodeLost('nodescripts', 'init: not a shell script');
        break;
      } catch (e) {
        if (attempt >= 8) throw e instanceof NodeLost ? e : new NodeLost(current, (e as Error).message);
        r.httpRetries++;
        r.retryReasons.push(`${current}: ${(e as Error).message}`);
        if (current === 'dhcp2') me2 = '';
        await sleep(wait);
        wait *= 2;
      }
    }
    done('nodescripts');
    // 5. The script's node side: the credential, the reports, getfile of the image.
    current = 'image';
    const credential = shellValue(initScript, 'PROVISIOND_CREDENTIAL');
    const auth: Record<string, string> = credential ? { Authorization: `Bearer ${credential}` } : {};
    const report = async (stage: string, msg = '') => {
      const url = `${master}/nodes/${NODEID}/events?stage=${encodeURIComponent(stage)}&msg=${encodeURIComponent(msg)}`;
      await httpGet(url, me2, { headers: auth, timeoutMs: 5000 }).catch(() => undefined);
    };
    await report('dhcp', `eth0 ${me2}/16`);
    await report('got-script', `${initScript.length} bytes`);
    await report('init-script-start');
    const vnfs = shellValue(initScript, 'VNFS');
    const vnfsMaster = shellValue(initScript, 'VNFSMASTER');
    const prefix = shellValue(initScript, 'VNFSPREFIX') || 'files';
    if (!vnfs || !vnfsMaster) throw new NodeLost('image', 'the init script sets no VNFS or VNFSMASTER');
    if (!initScript.includes('getfile "vnfs/$VNFS/image.cpio.gz"')) throw new NodeLost('image', 'the init script does not getfile the image');
    await report('getfile', `vnfs/${vnfs}/image.cpio.gz`);
    const imageUrl = `http://${vnfsMaster}/${prefix.replace(/^\//, '')}/vnfs/${vnfs}/image.cpio.gz`;
    let delay = 1000;
    for (let n = 1; ; n++) {
      try {
        const sum = await httpGet(`${imageUrl}.sha256`, me2, { headers: auth, timeoutMs: 30_000 });
        if (sum.status !== 200 && sum.status !== 404) throw new Error(`sha256: HTTP ${sum.status}`);
        const u = new URL(imageUrl);
        const c = await BulkConnection.open(u.hostname, Number(u.port || 80), me2, 900_000);
        const img = await c.get(u.host, u.pathname, auth).finally(() => c.close());
        if (img.status !== 200) throw new Error(`image: HTTP ${img.status}`);
        r.bytes += img.bytes + sum.bytes;
        break;
      } catch (e) {
        if (n >= 6) throw new NodeLost('image', `getfile: ${(e as Error).message}`);
        r.httpRetries++;
        r.retryReasons.push(`image: getfile: ${(e as Error).message}`);
        await sleep(delay);
        delay = Math.min(delay * 2, 30_000);
      }
    }
    await report('image', `${vnfs} -`);
    await report('unpack', vnfs);
    await report('script-exit', '0');
    done('image');
    // 6. The ready agent's first check-in.
    current = 'ready';
    const nodeid = shellValue(initScript, 'NODEID') ?? NODEID;
    const ready = await httpGet(`${master}/nodescripts/ready?nodeid=${nodeid}`, me2, { headers: auth, keep: true, timeoutMs: 120_000 }).catch((e: Error) => {
      throw new NodeLost('ready', e.message);
    });
    if (ready.status !== 200) throw new NodeLost('ready', `ready: HTTP ${ready.status}`);
    await report('ready', 'exit 0');
    done('ready');
    r.ok = true;
    r.totalMs = performance.now() - began;
  } catch (e) {
    r.phase = e instanceof NodeLost ? e.phase : current;
    r.reason = (e as Error).message;
  }
  return r;
}

const pct = (xs: number[], p: number) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]! : 0);

/** Boots `opts.nodes` simulated nodes at once; resolves with the report when all are ready or lost. */
export async function simulateStorm(opts: SimOptions): Promise<{ report: StormReport; results: NodeResult[] }> {
  const hub = await UdpSide.open();
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const results: NodeResult[] = [];
  const began = performance.now();
  let last = began;
  const progress = opts.progressMs
    ? setInterval(() => {
        const ok = results.filter((r) => r.ok).length;
        process.stderr.write(`storm: ${((performance.now() - began) / 1000).toFixed(0)} s: ${ok} ready, ${results.length - ok} lost, ${opts.nodes - results.length} booting\n`);
      }, opts.progressMs)
    : null;
  try {
    const all = Array.from({ length: opts.nodes }, async (_, i) => {
      await sleep(Math.random() * opts.spreadMs);
      const r = await bootNode(hub, macOf(opts.macPrefix, i));
      results.push(r);
      last = performance.now();
      return r;
    });
    const deadline = new Promise<'deadline'>((r) => setTimeout(() => r('deadline'), opts.deadlineMs).unref());
    const outcome = await Promise.race([Promise.all(all), deadline]);
    const timedOut = outcome === 'deadline';
    if (timedOut) {
      const seen = new Set(results.map((r) => r.mac));
      for (let i = 0; i < opts.nodes; i++) {
        const m = macOf(opts.macPrefix, i);
        if (!seen.has(m)) results.push({ mac: m, ok: false, phase: 'dhcp', reason: 'not ready when the storm deadline passed', phases: {}, dhcpRetransmits: 0, tftpRetransmits: 0, httpRetries: 0, retryReasons: [], bytes: 0 });
      }
      last = performance.now();
    }
    const phases: StormReport['phases'] = {};
    for (const p of PHASES) {
      const xs = results.map((r) => r.phases[p]).filter((x): x is number => x !== undefined);
      phases[p] = { p50: pct(xs, 50), p99: pct(xs, 99), max: pct(xs, 100), n: xs.length };
    }
    const failures: StormReport['failures'] = {};
    for (const r of results.filter((x) => !x.ok)) {
      const byReason = (failures[r.phase!] ??= {});
      const reason = (r.reason ?? '?').replace(/[0-9a-f]{2}(:[0-9a-f]{2}){5}/gi, 'MAC');
      byReason[reason] = (byReason[reason] ?? 0) + 1;
    }
    const totals = results.filter((r) => r.ok).map((r) => r.totalMs!);
    const retries: Record<string, number> = {};
    for (const r of results) for (const why of r.retryReasons) retries[why] = (retries[why] ?? 0) + 1;
    const report: StormReport = {
      nodes: opts.nodes,
      ready: results.filter((r) => r.ok).length,
      failed: results.filter((r) => !r.ok).length,
      wallMs: last - began,
      phases,
      failures,
      retransmits: {
        dhcp: results.reduce((s, r) => s + r.dhcpRetransmits, 0),
        tftp: results.reduce((s, r) => s + r.tftpRetransmits, 0),
        httpRetries: results.reduce((s, r) => s + r.httpRetries, 0),
      },
      retries,
      bytes: results.reduce((s, r) => s + r.bytes, 0),
      boot: { p50: pct(totals, 50), p99: pct(totals, 99), max: pct(totals, 100) },
      simulatorLag: { p99: lag.percentile(99) / 1e6, max: lag.max / 1e6 },
    };
    return { report, results };
  } finally {
    if (progress) clearInterval(progress);
    lag.disable();
    await hub.close();
  }
}
