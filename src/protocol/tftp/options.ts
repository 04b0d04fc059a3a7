/**
 * Option negotiation (RFC 2347) of a read request: which of `blksize` (RFC 2348), `timeout` and
 * `tsize` (RFC 2349) and `windowsize` (RFC 7440) the server grants, and the OACK that says so.
 * Unknown or malformed options are ignored, as RFC 2347 requires: the transfer then runs with the
 * RFC 1350 default for that option. Pure.
 */

export const DEFAULT_BLKSIZE = 512;
export const MIN_BLKSIZE = 8;
export const MAX_BLKSIZE = 65464;

export interface NegotiationLimits {
  /** Largest blksize granted (config `tftp.maxBlksize`, e.g. 1468 for a 1500-byte MTU path). */
  maxBlksize: number;
  /** Largest windowsize granted. */
  maxWindowsize: number;
  /**
   * Largest window in bytes (blksize x windowsize). A burst larger than the client's socket receive
   * buffer is dropped by its kernel and the transfer crawls from timeout to timeout, so the granted
   * windowsize is lowered until the burst fits (RFC 7440 lets the server answer a smaller value).
   */
  maxWindowBytes: number;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  /** Retransmission timeout the client asked for, seconds; null: the server's own. */
  timeout: number | null;
  /** The OACK options, or null when no option was granted (the transfer starts with DATA 1). */
  oack: Record<string, string> | null;
}

function integer(value: string | undefined): number | null {
  if (value === undefined || !/^\d{1,10}$/.test(value.trim())) return null;
  return Number(value.trim());
}

/**
 * Negotiates the options of a read request for a file of `size` bytes (null: not known in advance,
 * then tsize is not acknowledged).
 */
export function negotiateOptions(requested: Record<string, string>, size: number | null, limits: NegotiationLimits): Negotiated {
  const oack: Record<string, string> = {};
  let blksize = DEFAULT_BLKSIZE;
  let windowsize = 1;
  let timeout: number | null = null;

  const b = integer(requested.blksize);
  if (b !== null && b >= MIN_BLKSIZE) {
    blksize = Math.min(b, MAX_BLKSIZE, limits.maxBlksize);
    oack.blksize = String(blksize);
  }
  const t = integer(requested.timeout);
  if (t !== null && t >= 1 && t <= 255) {
    timeout = t;
    oack.timeout = String(t);
  }
  if (requested.tsize !== undefined && size !== null) oack.tsize = String(size);
  const w = integer(requested.windowsize);
  if (w !== null && w >= 1 && w <= 65535) {
    const byBytes = Math.max(1, Math.floor(limits.maxWindowBytes / blksize));
    windowsize = Math.min(w, limits.maxWindowsize, byBytes);
    oack.windowsize = String(windowsize);
  }
  return { blksize, windowsize, timeout, oack: Object.keys(oack).length > 0 ? oack : null };
}
