/**
 * Hardware addresses ("nodeid" in Perceus's words). The canonical form is uppercase with colons:
 * `AA:BB:CC:DD:EE:FF`. Input may use any case and `-`, `:` or `.` separators, or none.
 * IPoIB client identifiers (20 octets) are accepted too and kept whole.
 */

const HEX = /^[0-9a-f]+$/i;
const CANONICAL = /^[0-9A-F]{2}(:[0-9A-F]{2}){5,19}$/;

/** Uppercase hex digit or not, by char code. */
const isHexUpper = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 70);

/** Whether `s` is a canonical Ethernet address (`AA:BB:CC:DD:EE:FF`), checked without a regex. */
function isCanonicalEthernet(s: string): boolean {
  if (s.length !== 17) return false;
  for (let i = 0; i < 17; i++) {
    const c = s.charCodeAt(i);
    if (i % 3 === 2 ? c !== 58 : !isHexUpper(c)) return false;
  }
  return true;
}

/** Parses a hardware address in any usual notation; returns the canonical form or null. */
export function parseMac(input: string): string | null {
  // The servers look nodes up per packet with addresses already in canonical form: answer those
  // without the splitting and re-joining below (the loop costs a fraction of the regex).
  if (isCanonicalEthernet(input) || CANONICAL.test(input)) return input;
  const trimmed = input.trim();
  let hex: string;
  if (/^[0-9a-f]{1,2}([:-][0-9a-f]{1,2})+$/i.test(trimmed)) {
    hex = trimmed.split(/[:-]/).map((p) => p.padStart(2, '0')).join('');
  } else if (/^[0-9a-f]{4}(\.[0-9a-f]{4})+$/i.test(trimmed)) {
    hex = trimmed.replaceAll('.', '');
  } else if (HEX.test(trimmed) && trimmed.length % 2 === 0) {
    hex = trimmed;
  } else {
    return null;
  }
  const octets = hex.length / 2;
  // Ethernet is 6 octets; IPoIB hardware addresses are 20; allow the range of client identifiers in between.
  if (octets < 6 || octets > 20) return null;
  return hex.toUpperCase().match(/../g)!.join(':');
}

/** Like parseMac, but throws a TypeError naming the bad input. */
export function canonicalMac(input: string): string {
  const mac = parseMac(input);
  if (mac === null) throw new TypeError(`not a hardware address: ${JSON.stringify(input)}`);
  return mac;
}

/** Canonical MAC from raw octets (a DHCP chaddr, say). */
export function macFromBytes(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
}

/** Octets of a canonical or loose MAC. */
export function macToBytes(mac: string): Buffer {
  return Buffer.from(canonicalMac(mac).replaceAll(':', ''), 'hex');
}
