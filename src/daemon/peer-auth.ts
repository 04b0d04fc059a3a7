/**
 * How servers sharing a database prove themselves to each other (a peer's image fetch): an HMAC of
 * the request's path and time under the cluster secret, which only the database hands out. The
 * secret itself never crosses the network; a signature is good for 5 minutes either side of the
 * receiver's clock, and for that one path.
 *
 *   Authorization: Provisiond-Peer <ms since the epoch>:<hex HMAC-SHA256(secret, "<ms> <path>")>
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const PEER_SCHEME = 'Provisiond-Peer';
/** How far apart the signer's clock and the receiver's may be (ms). */
export const PEER_SKEW_MS = 300_000;

function mac(secret: string, at: number, path: string): string {
  return createHmac('sha256', secret).update(`${at} ${path}`).digest('hex');
}

/** The Authorization header value of a peer request for `path`. */
export function peerAuthorization(secret: string, path: string, now = Date.now()): string {
  return `${PEER_SCHEME} ${now}:${mac(secret, now, path)}`;
}

/** Null when `header` is a good peer signature of `path`, else why not (lowercase, for a 401). */
export function peerRefusal(secret: string, header: string, path: string, now = Date.now()): string | null {
  const m = /^Provisiond-Peer\s+(\d{1,16}):([0-9a-f]{64})\s*$/i.exec(header);
  if (!m) return `a ${PEER_SCHEME} credential is "${PEER_SCHEME} MS:HMAC"`;
  const at = Number(m[1]);
  if (Math.abs(now - at) > PEER_SKEW_MS) return `the peer signature is ${Math.round((now - at) / 1000)} s from this server's clock (more than ${PEER_SKEW_MS / 1000} s): check the servers' clocks`;
  const want = Buffer.from(mac(secret, at, path), 'hex');
  if (!timingSafeEqual(want, Buffer.from(m[2]!.toLowerCase(), 'hex'))) return 'the peer signature does not match the cluster secret of this database';
  return null;
}
