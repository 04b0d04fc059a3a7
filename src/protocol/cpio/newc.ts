/**
 * The cpio `newc` (SVR4, magic 070701) format the Linux kernel unpacks as an initramfs and that
 * VNFS images use. Pure codec: header encoding and decoding, no file system access.
 *
 * Layout of one entry: a 110-byte ASCII header (magic + 13 eight-digit hex fields), the NUL-terminated
 * name, padding to 4 bytes, the data, padding to 4 bytes. The archive ends with `TRAILER!!!`.
 */

export const NEWC_MAGIC = '070701';
export const TRAILER = 'TRAILER!!!';
const HEADER_SIZE = 110;
const MAX_FIELD = 0xffffffff;

/** File type bits of `mode` (as in stat(2)). */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;
export const S_IFSOCK = 0o140000;

/** One archive member's header. `size` is the data length (the link target's length for symlinks). */
export interface CpioHeader {
  name: string;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  size: number;
  devmajor: number;
  devminor: number;
  rdevmajor: number;
  rdevminor: number;
}

/** Bytes needed to pad `n` to a multiple of 4. */
export function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function hex8(value: number, field: string, name: string): string {
  if (!Number.isInteger(value) || value < 0 || value > MAX_FIELD) {
    throw new RangeError(`cpio entry ${JSON.stringify(name)}: ${field} ${value} does not fit the newc format`);
  }
  return value.toString(16).padStart(8, '0');
}

/**
 * Encodes the header and name of one entry, padded so that the data can follow directly.
 * Files of 4 GiB or more cannot be stored in newc (the size field is 32 bits): a RangeError says so.
 */
export function encodeHeader(h: CpioHeader): Buffer {
  const name = Buffer.from(h.name, 'utf8');
  if (name.includes(0)) throw new RangeError(`cpio entry name contains a NUL byte: ${JSON.stringify(h.name)}`);
  const namesize = name.length + 1;
  const fields = [
    h.ino, h.mode, h.uid, h.gid, h.nlink, h.mtime, h.size,
    h.devmajor, h.devminor, h.rdevmajor, h.rdevminor, namesize, 0 /* check: unused in newc */,
  ];
  const labels = ['ino', 'mode', 'uid', 'gid', 'nlink', 'mtime', 'size', 'devmajor', 'devminor', 'rdevmajor', 'rdevminor', 'namesize', 'check'];
  const text = NEWC_MAGIC + fields.map((v, i) => hex8(v, labels[i]!, h.name)).join('');
  const total = HEADER_SIZE + namesize;
  const out = Buffer.alloc(total + pad4(total));
  out.write(text, 0, 'latin1');
  name.copy(out, HEADER_SIZE);
  return out;
}

/** The closing entry of every archive. */
export function encodeTrailer(): Buffer {
  return encodeHeader({
    name: TRAILER, ino: 0, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, size: 0,
    devmajor: 0, devminor: 0, rdevmajor: 0, rdevminor: 0,
  });
}

/** Decoded header plus where its data starts and the offset of the next header. */
export interface DecodedEntry {
  header: CpioHeader;
  dataOffset: number;
  next: number;
}

/**
 * Decodes the entry at `offset` of a complete archive in memory (used by tests and small images).
 * Throws on a bad magic or a truncated entry.
 */
export function decodeEntry(buf: Buffer, offset: number): DecodedEntry {
  if (offset + HEADER_SIZE > buf.length) throw new RangeError(`cpio: truncated header at offset ${offset}`);
  const magic = buf.toString('latin1', offset, offset + 6);
  if (magic !== NEWC_MAGIC && magic !== '070702') throw new RangeError(`cpio: bad magic ${JSON.stringify(magic)} at offset ${offset}`);
  const field = (i: number): number => {
    const s = buf.toString('latin1', offset + 6 + i * 8, offset + 14 + i * 8);
    if (!/^[0-9a-fA-F]{8}$/.test(s)) throw new RangeError(`cpio: bad header field at offset ${offset}`);
    return parseInt(s, 16);
  };
  const namesize = field(11);
  const nameStart = offset + HEADER_SIZE;
  if (namesize < 1 || nameStart + namesize > buf.length) throw new RangeError(`cpio: truncated name at offset ${offset}`);
  const name = buf.toString('utf8', nameStart, nameStart + namesize - 1);
  const dataOffset = nameStart + namesize + pad4(HEADER_SIZE + namesize);
  const size = field(6);
  if (dataOffset + size > buf.length) throw new RangeError(`cpio: truncated data of ${JSON.stringify(name)}`);
  const header: CpioHeader = {
    name, ino: field(0), mode: field(1), uid: field(2), gid: field(3), nlink: field(4), mtime: field(5), size,
    devmajor: field(7), devminor: field(8), rdevmajor: field(9), rdevminor: field(10),
  };
  return { header, dataOffset, next: dataOffset + size + pad4(size) };
}

/** Lists every entry of an in-memory archive up to the trailer, with its data. */
export function decodeArchive(buf: Buffer): Array<{ header: CpioHeader; data: Buffer }> {
  const out: Array<{ header: CpioHeader; data: Buffer }> = [];
  let offset = 0;
  for (;;) {
    const e = decodeEntry(buf, offset);
    if (e.header.name === TRAILER) return out;
    out.push({ header: e.header, data: buf.subarray(e.dataOffset, e.dataOffset + e.header.size) });
    offset = e.next;
  }
}
