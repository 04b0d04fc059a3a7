/**
 * TFTP packets (RFC 1350, options RFC 2347): decode a datagram into a typed packet, encode one back.
 * Pure: Buffer in, typed value out. A malformed datagram decodes to a `TftpDecodeError` naming what
 * is wrong; the server counts and drops it.
 */

export const Opcode = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/** Error codes of RFC 1350 (0-7) and RFC 2347 (8). */
export const ErrorCode = {
  NOT_DEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;

export type TftpMode = 'octet' | 'netascii' | 'mail';

/** A read or write request. Option names are lowercased (they are case-insensitive); values kept as sent. */
export interface RequestPacket {
  op: 'rrq' | 'wrq';
  filename: string;
  mode: TftpMode;
  options: Record<string, string>;
}
export interface DataPacket {
  op: 'data';
  block: number;
  data: Buffer;
}
export interface AckPacket {
  op: 'ack';
  block: number;
}
export interface ErrorPacket {
  op: 'error';
  code: number;
  message: string;
}
export interface OackPacket {
  op: 'oack';
  options: Record<string, string>;
}
export type TftpPacket = RequestPacket | DataPacket | AckPacket | ErrorPacket | OackPacket;

export class TftpDecodeError extends Error {
  override name = 'TftpDecodeError';
}

/** Splits NUL-terminated strings starting at `offset`; a missing final NUL is an error. */
function strings(buf: Buffer, offset: number): string[] {
  const out: string[] = [];
  let start = offset;
  while (start < buf.length) {
    const end = buf.indexOf(0, start);
    if (end < 0) throw new TftpDecodeError('string not terminated by NUL');
    // latin1: bytes map one-to-one, so a name with odd bytes is kept (and refused later), not mangled.
    out.push(buf.toString('latin1', start, end));
    start = end + 1;
  }
  return out;
}

/** Decodes one datagram. Throws TftpDecodeError when it is not a well-formed TFTP packet. */
export function decodePacket(buf: Buffer): TftpPacket {
  if (buf.length < 4) throw new TftpDecodeError(`packet too short (${buf.length} bytes)`);
  const op = buf.readUInt16BE(0);
  switch (op) {
    case Opcode.RRQ:
    case Opcode.WRQ: {
      const parts = strings(buf, 2);
      if (parts.length < 2) throw new TftpDecodeError('request without file name and mode');
      const mode = parts[1]!.toLowerCase();
      if (mode !== 'octet' && mode !== 'netascii' && mode !== 'mail') throw new TftpDecodeError(`unknown transfer mode ${JSON.stringify(parts[1])}`);
      const options: Record<string, string> = {};
      // A trailing unpaired string is tolerated (some firmware pads with an extra NUL): RFC 2347 says ignore what is not understood.
      for (let i = 2; i + 1 < parts.length; i += 2) {
        const name = parts[i]!.toLowerCase();
        if (name && !(name in options)) options[name] = parts[i + 1]!;
      }
      return { op: op === Opcode.RRQ ? 'rrq' : 'wrq', filename: parts[0]!, mode, options };
    }
    case Opcode.DATA:
      return { op: 'data', block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case Opcode.ACK:
      return { op: 'ack', block: buf.readUInt16BE(2) };
    case Opcode.ERROR: {
      const end = buf.indexOf(0, 4);
      return { op: 'error', code: buf.readUInt16BE(2), message: buf.toString('latin1', 4, end < 0 ? buf.length : end) };
    }
    case Opcode.OACK: {
      const parts = strings(buf, 2);
      const options: Record<string, string> = {};
      for (let i = 0; i + 1 < parts.length; i += 2) options[parts[i]!.toLowerCase()] = parts[i + 1]!;
      return { op: 'oack', options };
    }
    default:
      throw new TftpDecodeError(`unknown opcode ${op}`);
  }
}

function withStrings(op: number, values: string[]): Buffer {
  const body = values.map((v) => `${v}\0`).join('');
  const buf = Buffer.allocUnsafe(2 + Buffer.byteLength(body, 'latin1'));
  buf.writeUInt16BE(op, 0);
  buf.write(body, 2, 'latin1');
  return buf;
}

/** Encodes a packet. DATA copies its payload; the server uses `dataHeader` to send without copying. */
export function encodePacket(p: TftpPacket): Buffer {
  switch (p.op) {
    case 'rrq':
    case 'wrq':
      return withStrings(p.op === 'rrq' ? Opcode.RRQ : Opcode.WRQ, [p.filename, p.mode, ...Object.entries(p.options).flat()]);
    case 'data':
      return Buffer.concat([dataHeader(p.block), p.data]);
    case 'ack': {
      const buf = Buffer.allocUnsafe(4);
      buf.writeUInt16BE(Opcode.ACK, 0);
      buf.writeUInt16BE(p.block & 0xffff, 2);
      return buf;
    }
    case 'error': {
      const msg = Buffer.from(`${p.message}\0`, 'latin1');
      const buf = Buffer.allocUnsafe(4 + msg.length);
      buf.writeUInt16BE(Opcode.ERROR, 0);
      buf.writeUInt16BE(p.code, 2);
      msg.copy(buf, 4);
      return buf;
    }
    case 'oack':
      return withStrings(Opcode.OACK, Object.entries(p.options).flat());
  }
}

/** The 4-byte header of DATA block `block` (taken modulo 65536: block numbers roll over to 0). */
export function dataHeader(block: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt16BE(Opcode.DATA, 0);
  buf.writeUInt16BE(block & 0xffff, 2);
  return buf;
}
