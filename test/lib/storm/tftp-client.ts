/**
 * A TFTP read as a PXE ROM does it: blksize 1468 and tsize asked, one block at a time, a lost packet
 * resent after 1, 2, 4, 8, 16 s. Used by the storm simulator's UDP worker and by bench/tftp's storm
 * rows (bench/lib/tftp-storm.ts), many reads at once on one event loop.
 */
import dgram from 'node:dgram';
import { decodePacket, encodePacket } from '../../../src/protocol/tftp/packet.js';

export type TftpReadResult = { retransmits: number } & ({ bytes: number } | { error: string });

const SCHEDULE = [1000, 2000, 4000, 8000, 16000];

export async function tftpRead(local: string, server: string, port: number, file: string, blksize = 1468): Promise<TftpReadResult> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ address: local, port: 0 }, () => resolve());
  });
  let retransmits = 0;
  try {
    let last = encodePacket({ op: 'rrq', filename: file, mode: 'octet', options: { blksize: String(blksize), tsize: '0' } });
    let lastPort = port;
    let peerPort = 0;
    let expect = 1;
    let size = 512;
    let bytes = 0;
    for (;;) {
      let got: { msg: Buffer; port: number } | null = null;
      for (let i = 0; i < SCHEDULE.length && !got; i++) {
        if (i > 0) retransmits++;
        sock.send(last, lastPort, server);
        got = await new Promise<{ msg: Buffer; port: number } | null>((resolve) => {
          const timer = setTimeout(() => {
            sock.off('message', on);
            resolve(null);
          }, SCHEDULE[i]);
          const on = (msg: Buffer, rinfo: dgram.RemoteInfo) => {
            if (peerPort && rinfo.port !== peerPort) return;
            clearTimeout(timer);
            sock.off('message', on);
            resolve({ msg, port: rinfo.port });
          };
          sock.on('message', on);
        });
      }
      if (!got) return { retransmits, error: `TFTP timeout at block ${expect}` };
      if (!peerPort) peerPort = got.port;
      lastPort = peerPort;
      let p;
      try {
        p = decodePacket(got.msg);
      } catch {
        continue;
      }
      if (p.op === 'error') return { retransmits, error: `TFTP error ${p.code}: ${p.message}` };
      if (p.op === 'oack') {
        size = Number(p.options.blksize ?? 512);
        last = encodePacket({ op: 'ack', block: 0 });
        continue;
      }
      if (p.op !== 'data') continue;
      if (p.block !== (expect & 0xffff)) continue; // a duplicate or out of order: our last ACK is resent by the loop
      bytes += p.data.length;
      last = encodePacket({ op: 'ack', block: p.block });
      expect++;
      if (p.data.length < size) {
        // Sent before the socket closes (a send is queued; closing at once would drop it).
        await new Promise<void>((resolve) => sock.send(last, peerPort, server, () => resolve()));
        return { retransmits, bytes };
      }
    }
  } finally {
    sock.close();
  }
}
