/**
 * The signature servers of one database present to each other (src/daemon/peer-auth.ts): good for
 * its path and 5 minutes either side of the receiver's clock, under the cluster secret only, and a
 * refusal says why.
 */
import t from 'tap';
import { PEER_SKEW_MS, peerAuthorization, peerRefusal } from '../../src/daemon/peer-auth.js';

const secret = 'a'.repeat(64);
const path = '/cluster/vnfs/demo/image.cpio.gz';
const now = 1_800_000_000_000;

const cases: Array<{ name: string; header: string; refused: RegExp | null }> = [
  { name: 'signed now', header: peerAuthorization(secret, path, now), refused: null },
  { name: 'signed 4 minutes ago', header: peerAuthorization(secret, path, now - 240_000), refused: null },
  { name: 'signed by a clock 4 minutes ahead', header: peerAuthorization(secret, path, now + 240_000), refused: null },
  { name: 'signed 6 minutes ago', header: peerAuthorization(secret, path, now - PEER_SKEW_MS - 60_000), refused: /360 s from this server's clock/ },
  { name: 'another path', header: peerAuthorization(secret, '/cluster/vnfs/other/image.cpio.gz', now), refused: /does not match the cluster secret/ },
  { name: 'another secret', header: peerAuthorization('b'.repeat(64), path, now), refused: /does not match the cluster secret/ },
  { name: 'the scheme in lower case', header: peerAuthorization(secret, path, now).replace('Provisiond-Peer', 'provisiond-peer'), refused: null },
  { name: 'no time', header: `Provisiond-Peer ${'0'.repeat(64)}`, refused: /is "Provisiond-Peer MS:HMAC"/ },
  { name: 'a short hmac', header: `Provisiond-Peer ${now}:abcd`, refused: /is "Provisiond-Peer MS:HMAC"/ },
  { name: 'a bearer token', header: 'Bearer x', refused: /is "Provisiond-Peer MS:HMAC"/ },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const why = peerRefusal(secret, c.header, path, now);
    if (c.refused === null) t.equal(why, null, 'accepted');
    else t.match(why, c.refused, 'refused with the reason');
  });
}

t.test('the secret never appears in the header', async (t) => {
  t.notOk(peerAuthorization(secret, path, now).includes(secret));
});
