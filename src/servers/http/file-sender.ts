/**
 * Sends one regular file the way download clients and resuming nodes expect: `ETag`,
 * `Last-Modified`, conditional requests (304), one byte range (206/416, `If-Range`),
 * `Content-Length`, `X-Checksum-Sha256` of the whole file, HEAD. A small body goes in one write,
 * a large one through sendfile.ts (zero-copy, ranges included), else body-pump.ts (large reads,
 * read-ahead, backpressure).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { ChecksumCache } from './checksum-cache.js';
import { pumpFile, type PumpOptions } from './body-pump.js';
import { HttpError } from './errors.js';
import { parseRange } from './range.js';
import type { SendfileSender } from './sendfile.js';

/** What a finished (or cut) transfer reports, for logs and the boot timeline. */
export interface TransferReport {
  file: string;
  status: number;
  bytes: number;
  durationMs: number;
  /** false when the client went away or reading failed before the body was complete. */
  complete: boolean;
}

export interface SendFileOptions extends PumpOptions {
  checksums?: ChecksumCache;
  contentType?: string;
  /** Zero-copy path for large bodies, when available. */
  sendfile?: SendfileSender | null;
}

/** Bodies up to this size are read in one synchronous read and sent in one write. */
const SMALL_BODY = 256 * 1024;

/** Serves `file` (an absolute, already vetted path). Throws HttpError 404 when it is not a regular file. */
export async function sendFile(req: IncomingMessage, res: ServerResponse, file: string, options: SendFileOptions = {}): Promise<TransferReport> {
  const began = performance.now();
  // open/fstat/small reads are synchronous: on a page-cached local file they take microseconds, and a
  // round trip through libuv's thread pool for each measured an order of magnitude slower per request.
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') throw new HttpError(404, 'not found');
    if (code === 'EACCES') throw new HttpError(403, 'forbidden: not readable by the daemon');
    throw err;
  }
  try {
    // Stat the open file, not the path: what we describe is what we send even if it is replaced meanwhile.
    const st = fstatSync(fd);
    if (!st.isFile()) throw new HttpError(404, 'not found');
    const etag = `"${st.ino.toString(16)}-${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const lastModified = st.mtime.toUTCString();
    const report = (status: number, bytes: number, complete: boolean): TransferReport => ({
      file,
      status,
      bytes,
      complete,
      durationMs: performance.now() - began,
    });

    res.setHeader('Accept-Ranges', 'bytes');
    res.setHeader('ETag', etag);
    res.setHeader('Last-Modified', lastModified);
    res.setHeader('Content-Type', options.contentType ?? 'application/octet-stream');
    if (notModified(req, etag, st.mtime)) {
      res.statusCode = 304;
      res.end();
      return report(304, 0, true);
    }
    if (options.checksums) res.setHeader('X-Checksum-Sha256', await options.checksums.sha256(file, st));

    let start = 0;
    let end = st.size - 1;
    let status = 200;
    const ifRange = req.headers['if-range'] as string | undefined;
    const rangeApplies = !ifRange || ifRange === etag || (!ifRange.startsWith('"') && Date.parse(ifRange) >= Math.floor(st.mtimeMs / 1000) * 1000);
    const range = rangeApplies ? parseRange(req.headers.range, st.size) : ({ kind: 'none' } as const);
    if (range.kind === 'unsatisfiable') {
      throw new HttpError(416, `range not satisfiable: the file has ${st.size} bytes`, { headers: { 'Content-Range': `bytes */${st.size}` } });
    }
    if (range.kind === 'range') {
      ({ start, end } = range);
      status = 206;
      res.setHeader('Content-Range', `bytes ${start}-${end}/${st.size}`);
    }
    const length = Math.max(0, end - start + 1);
    res.statusCode = status;
    res.setHeader('Content-Length', String(length));
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return report(status, 0, true);
    }
    if (length <= SMALL_BODY) {
      const buf = Buffer.allocUnsafe(length);
      const got = readSync(fd, buf, 0, length, start);
      if (got !== length) {
        res.destroy();
        return report(status, 0, false);
      }
      res.end(buf);
      return report(status, length, true);
    }
    const sent = options.sendfile?.takes(res, length) ? await options.sendfile.send(res, fd, start, length) : await pumpFile(fd, res, start, length, options);
    return report(status, sent, sent === length);
  } finally {
    try {
      closeSync(fd);
    } catch {}
  }
}

function notModified(req: IncomingMessage, etag: string, mtime: Date): boolean {
  const inm = req.headers['if-none-match'];
  if (inm) return inm === '*' || inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
  const ims = req.headers['if-modified-since'];
  if (ims) {
    const t = Date.parse(ims);
    return !Number.isNaN(t) && Math.floor(mtime.getTime() / 1000) * 1000 <= t;
  }
  return false;
}
