/**
 * The storm simulator's UDP side (DHCP and TFTP), on a worker thread of its own: the simulator's
 * main thread reads gigabytes of HTTP bodies in a storm, and a DHCP or TFTP timer waiting behind
 * that work would resend for the simulator's slowness, not the server's. Here the timers and the
 * replies are handled on a quiet event loop, as each real node's firmware handles its own.
 *
 * Messages in: `{ id, op: 'dhcp', packet, xid, want, schedule }` (send the DHCP packet, wait for a reply
 * of one of `want` message types, resending after each wait of `schedule`) and `{ id, op: 'tftp',
 * local, server, file }` (a TFTP read). Out: `{ id, reply | bytes | error, retransmits }`.
 */
import dgram from 'node:dgram';
import { parentPort } from 'node:worker_threads';
import { decodePacket } from '../../../src/protocol/dhcp/packet.js';
import { getMessageType } from '../../../src/protocol/dhcp/options.js';
import { tftpRead } from './tftp-client.js';

export type UdpRequest =
  | { id: number; op: 'dhcp'; packet: Uint8Array; xid: number; want: number[]; schedule: number[] }
  | { id: number; op: 'tftp'; local: string; server: string; file: string };

export type UdpAnswer = { id: number; retransmits: number } & ({ reply: Uint8Array | null } | { bytes: number } | { error: string });

const port = parentPort!;
const waiters = new Map<number, (msg: Buffer) => boolean>();

const hub = dgram.createSocket({ type: 'udp4', reuseAddr: true });
hub.on('message', (msg) => {
  if (msg.length < 8) return;
  waiters.get(msg.readUInt32BE(4))?.(msg);
});
hub.on('error', (err) => port.postMessage({ fatal: String(err) }));
hub.bind({ port: 68, address: '0.0.0.0' }, () => {
  hub.setBroadcast(true);
  try {
    hub.setRecvBufferSize(32 << 20);
  } catch {
    /* the system's limit then */
  }
  port.postMessage({ ready: true });
});

async function dhcp(r: Extract<UdpRequest, { op: 'dhcp' }>): Promise<UdpAnswer> {
  const buf = Buffer.from(r.packet);
  let retransmits = 0;
  for (let i = 0; i < r.schedule.length; i++) {
    if (i > 0) retransmits++;
    const reply = await new Promise<Buffer | null>((resolve) => {
      const timer = setTimeout(() => {
        waiters.delete(r.xid);
        resolve(null);
      }, r.schedule[i]);
      waiters.set(r.xid, (msg) => {
        let type: number | null;
        try {
          const p = decodePacket(msg);
          if (p.op !== 2) return false;
          type = getMessageType(p);
        } catch {
          return false;
        }
        if (type === null || !r.want.includes(type)) return false;
        clearTimeout(timer);
        waiters.delete(r.xid);
        resolve(msg);
        return true;
      });
      hub.send(buf, 67, '255.255.255.255');
    });
    if (reply) return { id: r.id, retransmits, reply };
  }
  return { id: r.id, retransmits, reply: null };
}

async function tftp(r: Extract<UdpRequest, { op: 'tftp' }>): Promise<UdpAnswer> {
  const t = await tftpRead(r.local, r.server, 69, r.file);
  return { id: r.id, ...t };
}

port.on('message', (r: UdpRequest | 'close') => {
  if (r === 'close') {
    hub.close();
    port.close();
    return;
  }
  const work = r.op === 'dhcp' ? dhcp(r) : tftp(r);
  void work.then(
    (a) => port.postMessage(a),
    (err: unknown) => port.postMessage({ id: r.id, retransmits: 0, error: String(err) }),
  );
});
