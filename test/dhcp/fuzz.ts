/**
 * Deterministic hostile input for the DHCP codec and server: random octets, and valid requests
 * mutated the ways broken firmware and attackers do (truncation, a wrong magic cookie, option
 * lengths past the end, Pad/End misuse, hlen > 16, unknown htypes, IPoIB with a client id,
 * a huge option 55, bit flips).
 */
import { HTYPE_INFINIBAND, MessageType, Opt } from '../../src/protocol/dhcp/constants.js';
import { encodePacket } from '../../src/protocol/dhcp/packet.js';
import { clientPacket } from './packets.js';

/** xorshift32: the same seed gives the same packets, so a failure can be replayed. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

export function* fuzzPackets(count: number, seed = 1): Generator<Buffer> {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const bytes = (n: number) => {
    const b = Buffer.allocUnsafe(n);
    for (let k = 0; k < n; k++) b[k] = int(256);
    return b;
  };
  const types = [MessageType.DISCOVER, MessageType.REQUEST, MessageType.DECLINE, MessageType.RELEASE, MessageType.INFORM];
  for (let i = 0; i < count; i++) {
    const mac = Array.from({ length: 6 }, () => int(256).toString(16).padStart(2, '0')).join(':');
    const base = encodePacket(
      clientPacket({ mac, type: types[int(types.length)]!, arch: int(4) === 0 ? int(40) : undefined, userClass: int(3) === 0 ? 'iPXE' : undefined, vendorClass: int(2) ? 'PXEClient:Arch:00000:UNDI:002001' : undefined, requested: int(2) ? `10.77.0.${int(256)}` : undefined, serverId: int(3) === 0 ? `10.77.0.${int(3)}` : undefined, ciaddr: int(4) === 0 ? `10.77.0.${int(256)}` : undefined }),
    );
    const kind = i % 10;
    let b: Buffer;
    switch (kind) {
      case 0: // random octets, random length
        b = bytes(int(600));
        break;
      case 1: // truncated
        b = base.subarray(0, int(base.length));
        break;
      case 2: // wrong magic cookie
        b = Buffer.from(base);
        b[236 + int(4)] ^= 1 + int(255);
        break;
      case 3: {
        // an option length running past the end
        b = Buffer.concat([base.subarray(0, 240), Buffer.from([Opt.MESSAGE_TYPE, 1, 1, Opt.HOSTNAME, 200 + int(55), 65, 66])]);
        break;
      }
      case 4: // Pad/End misuse: End first, options after it, Pad runs, a lone code at the end
        b = Buffer.concat([base.subarray(0, 240), Buffer.from([0, 0, 255, 53, 1, 1, 0, 0, 0, 55]), Buffer.from(Array.from({ length: int(40) }, () => (int(2) ? 0 : 255)))]);
        break;
      case 5: // hlen > 16 or unknown htype
        b = Buffer.from(base);
        if (int(2)) b[2] = 17 + int(239);
        else b[1] = 2 + int(254);
        break;
      case 6: {
        // IPoIB: htype 32, hlen 0, client id (sometimes short or absent)
        b = Buffer.from(base);
        b[1] = HTYPE_INFINIBAND;
        b[2] = 0;
        b.fill(0, 28, 44);
        const cidLen = int(25);
        b = Buffer.concat([b.subarray(0, 240), Buffer.from([53, 1, 1, 61, cidLen]), bytes(cidLen), Buffer.from([255])]);
        break;
      }
      case 7: {
        // a huge option 55, repeated (RFC 3396 concatenation), beyond any real client
        const parts = [base.subarray(0, 240), Buffer.from([53, 1, 1])];
        for (let k = 0, n = 1 + int(40); k < n; k++) parts.push(Buffer.from([55, 255]), bytes(255));
        parts.push(Buffer.from([255]));
        b = Buffer.concat(parts);
        break;
      }
      default: {
        // bit flips anywhere, including the options
        b = Buffer.from(base);
        for (let k = 0, n = 1 + int(8); k < n; k++) b[int(b.length)] ^= 1 << int(8);
      }
    }
    yield b;
  }
}
