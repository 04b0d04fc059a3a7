/**
 * Netascii (RFC 764, as TFTP uses it): line ends become CR LF and a bare CR becomes CR NUL. Used for
 * `netascii` mode reads; the converted length is what `tsize` announces. Pure.
 */

const CR = 0x0d;
const LF = 0x0a;

/** Converts local (Unix) text to netascii. */
export function toNetascii(input: Buffer): Buffer {
  let extra = 0;
  for (let i = 0; i < input.length; i++) if (input[i] === LF || input[i] === CR) extra++;
  if (extra === 0) return input;
  const out = Buffer.allocUnsafe(input.length + extra);
  let o = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (c === LF) {
      out[o++] = CR;
      out[o++] = LF;
    } else if (c === CR) {
      out[o++] = CR;
      out[o++] = 0;
    } else {
      out[o++] = c;
    }
  }
  return out;
}

/** Converts netascii back to local text (the inverse, for tests and clients). */
export function fromNetascii(input: Buffer): Buffer {
  const out = Buffer.allocUnsafe(input.length);
  let o = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (c === CR && i + 1 < input.length && (input[i + 1] === LF || input[i + 1] === 0)) {
      out[o++] = input[i + 1] === LF ? LF : CR;
      i++;
    } else {
      out[o++] = c;
    }
  }
  return out.subarray(0, o);
}
