/**
 * The coverage-guided fuzz targets, run by `runGuided()` (test/lib/fuzz.ts) in a child process:
 *   node fuzz-child.ts TARGET COUNT SEED  -> one JSON line: the GuidedReport.
 * Each target is the pure parsing code a node or a stranger on the provisioning network reaches,
 * with the invariants its callers rely on; a thrown error is a finding.
 */
import { decodePacket, encodePacket, TftpDecodeError, type TftpPacket } from '../../src/protocol/tftp/packet.js';
import { negotiateOptions, MAX_BLKSIZE, MIN_BLKSIZE } from '../../src/protocol/tftp/options.js';
import { normalizeRequestPath, MAX_NAME_LENGTH } from '../../src/protocol/tftp/path.js';
import { parsePerceusRequest } from '../../src/servers/perceus/perceus-server.js';
import { routeOf } from '../../src/servers/http/app.js';
import { HttpError } from '../../src/servers/http/errors.js';
import { parseRange } from '../../src/servers/http/range.js';
import { locateExported } from '../../src/servers/http/safe-path.js';
import { parseMac } from '../../src/util/mac.js';
import { guidedFuzz, type GuidedOptions } from './fuzz.js';

type Target = Omit<GuidedOptions, 'count' | 'seed'>;

const b = (s: string) => Buffer.from(s, 'latin1');

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`invariant broken: ${what}`);
}

const LIMITS = { maxBlksize: 1468, maxWindowsize: 64, maxWindowBytes: 65536 };

const tftp: Target = {
  seeds: [
    encodePacket({ op: 'rrq', filename: 'undionly.kpxe', mode: 'octet', options: { blksize: '1468', tsize: '0', windowsize: '16', timeout: '3' } }),
    encodePacket({ op: 'rrq', filename: 'pxelinux.cfg/01-52-54-00-00-00-01', mode: 'netascii', options: {} }),
    encodePacket({ op: 'wrq', filename: 'x', mode: 'octet', options: { tsize: '10' } }),
    encodePacket({ op: 'ack', block: 1 }),
    encodePacket({ op: 'error', code: 0, message: 'TFTP Aborted' }),
    encodePacket({ op: 'data', block: 65535, data: Buffer.from('abc') }),
    encodePacket({ op: 'oack', options: { blksize: '512' } }),
  ],
  dict: ['blksize', 'tsize', 'timeout', 'windowsize', 'octet', 'netascii', 'mail', 'OCTET', '../', '/', '\\', '\0', '65464', '99999999999', '-1', ' 1'].map(b),
  cover: /src\/protocol\/tftp\//,
  target(input) {
    let p: TftpPacket;
    try {
      p = decodePacket(input);
    } catch (err) {
      if (err instanceof TftpDecodeError) return;
      throw err;
    }
    if (p.op === 'rrq' || p.op === 'wrq') {
      const path = normalizeRequestPath(p.filename);
      if (path.ok) check(!path.segments.includes('..') && !path.path.startsWith('/') && path.path.length <= MAX_NAME_LENGTH, `path ${JSON.stringify(path.path)} stays inside`);
      for (const size of [null, 0, 1, 1 << 30]) {
        const n = negotiateOptions(p.options, size, LIMITS);
        check(n.blksize >= MIN_BLKSIZE && n.blksize <= Math.max(512, Math.min(MAX_BLKSIZE, LIMITS.maxBlksize)), `blksize ${n.blksize} within limits`);
        check(n.windowsize >= 1 && n.windowsize <= LIMITS.maxWindowsize && (n.windowsize === 1 || n.windowsize * n.blksize <= LIMITS.maxWindowBytes), `windowsize ${n.windowsize} within limits`);
        check(n.timeout === null || (n.timeout >= 1 && n.timeout <= 255), `timeout ${n.timeout} within 1-255`);
      }
    }
    // What decodes encodes again (the server answers with the same codec).
    encodePacket(p);
  },
};

const MACS = ['52:54:00:00:00:01', '52-54-00-00-00-01', '525400000001', '01:52:54:00:00:00:01', '80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:00:00:01'];
const perceus: Target = {
  seeds: [b('init nodeid=52:54:00:00:00:01\n'), b('ready nodeid=52:54:00:00:00:01 nodename=n0001\r\n'), b('ping 12345\n'), b('log node booted\n'), b('init\n')],
  dict: ['nodeid=', 'nodename=', 'ping', 'log ', 'init', ' ', '\t', '\r', '=', ...MACS].map(b),
  cover: /src\/servers\/perceus\/|src\/util\/mac/,
  target(input) {
    const req = parsePerceusRequest(input.toString('latin1'));
    if (req?.kind === 'script') {
      check(/^\w+$/.test(req.state), `state ${JSON.stringify(req.state)} is one word`);
      check(parseMac(req.nodeid) === req.nodeid, `nodeid ${req.nodeid} is normalized`);
    }
  },
};

const TREES = [
  { name: 'vnfs', dir: '/var/lib/provisiond/vnfs' },
  { name: 'boot', dir: '/var/lib/provisiond/boot' },
];
const http: Target = {
  seeds: [
    b('/nodescripts/init?nodeid=52:54:00:00:00:01\nbytes=0-99'),
    b('/vnfs/demo/image.cpio.gz\nbytes=100-'),
    b('/boot/ipxe.ipxe\nbytes=-500'),
    b('/nodes/52:54:00:00:00:01/events?stage=ready&msg=exit%200\n'),
    b('/files/etc/hosts\nbytes=1-2,3-4'),
  ],
  dict: ['%2e%2e', '%2f', '%00', '..', '/', '\\', '?', '&', '=', 'nodeid=', 'bytes=', '-', ',', '%', '%%', '%c0%ae', '.hidden', 'vnfs', 'files', 'nodescripts', ...MACS].map(b),
  cover: /src\/servers\/http\/(safe-path|range|app)|src\/util\/mac/,
  target(input) {
    const [url = '', range] = input.toString('latin1').split('\n');
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const route = routeOf(path, ['files', 'vnfs']);
    check(['nodescripts', 'ipxe-script', 'boot', 'files', 'events', 'actions', 'upload', 'healthz', 'other'].includes(route), `route ${route} is one of the fixed names`);
    try {
      const { tree, relative } = locateExported(path.replace(/^\//, ''), TREES, { name: 'files', dir: '/var/lib/provisiond/files' });
      const parts = relative.split('/');
      check(!parts.includes('..') && !parts.includes('.') && !parts.some((p) => p.startsWith('.') || p.includes('\\') || p.includes('\0')), `${JSON.stringify(relative)} stays inside ${tree.name}`);
    } catch (err) {
      if (!(err instanceof HttpError) || ![400, 403, 404].includes(err.status)) throw err;
    }
    for (const size of [0, 1, 1000, 2 ** 40]) {
      const r = parseRange(range, size);
      if (r.kind === 'range') check(r.start >= 0 && r.start <= r.end && r.end < size && Number.isSafeInteger(r.start) && Number.isSafeInteger(r.end), `range ${r.start}-${r.end} inside ${size}`);
    }
    if (q !== -1) for (const v of new URLSearchParams(url.slice(q + 1)).values()) parseMac(v);
  },
};

const TARGETS: Record<string, Target> = { tftp, perceus, http };

const [name = '', count = '100000', seed = '1'] = process.argv.slice(2);
const target = TARGETS[name];
if (!target) {
  console.error(`unknown target ${name}: one of ${Object.keys(TARGETS).join(', ')}`);
  process.exit(2);
}
const report = await guidedFuzz({ ...target, count: Number(count), seed: Number(seed) });
console.log(JSON.stringify(report));
