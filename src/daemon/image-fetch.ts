/**
 * Fetches one file of a VNFS image from another server (`GET /cluster/vnfs/NAME/FILE` of its HTTP
 * service, signed with the cluster secret: peer-auth.ts) into a temp file, hashing as it writes.
 * Resolves only when the bytes' sha256 is the one wanted; otherwise the temp file is removed and it
 * rejects with the reason. A transfer silent for 30 s is cut.
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ProvisiondError } from '../util/errors.js';
import { peerAuthorization } from './peer-auth.js';

export const PEER_SHA_HEADER = 'x-provisiond-sha256';
const IDLE_MS = 30_000;

export class ImageFetchError extends ProvisiondError {}

export interface PeerFetch {
  /** The server's address, `HOST:PORT` of its HTTP service. */
  server: string;
  vnfs: string;
  file: string;
  sha256: string;
  secret: string;
  /** The folder the temp file is made in (the capsule's: renamed into place from there). */
  dir: string;
  signal?: AbortSignal;
}

/** The path a server serves `file` of `vnfs` to its peers at. */
export function peerPath(vnfs: string, file: string): string {
  return `/cluster/vnfs/${encodeURIComponent(vnfs)}/${encodeURIComponent(file)}`;
}

/** Downloads and checks one file; the temp file's path and its size. */
export async function fetchPeerFile(f: PeerFetch): Promise<{ file: string; bytes: number }> {
  const path = peerPath(f.vnfs, f.file);
  const what = `fetching ${f.file} of vnfs ${f.vnfs} from ${f.server}`;
  const abort = new AbortController();
  const onAbort = () => abort.abort(f.signal?.reason);
  f.signal?.addEventListener('abort', onAbort, { once: true });
  let idle = setTimeout(() => abort.abort(new Error(`no data for ${IDLE_MS / 1000} s`)), IDLE_MS);
  const tmp = join(f.dir, `.${f.file}.fetch-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    let res: Response;
    try {
      res = await fetch(`http://${f.server}${path}`, { headers: { authorization: peerAuthorization(f.secret, path) }, signal: abort.signal });
    } catch (err) {
      throw new ImageFetchError(`${what}: ${describe(err, abort.signal)}`, { cause: err });
    }
    if (res.status !== 200) {
      const reason = (await res.text().catch(() => '')).trim().slice(0, 300);
      throw new ImageFetchError(`${what}: HTTP ${res.status}${reason ? `: ${reason}` : ''}`);
    }
    const offered = res.headers.get(PEER_SHA_HEADER);
    if (offered && offered !== f.sha256) {
      await res.body?.cancel().catch(() => {});
      throw new ImageFetchError(`${what}: it serves sha256 ${offered}, not the current ${f.sha256} (it has another image now)`);
    }
    const length = Number(res.headers.get('content-length') ?? NaN);
    const hash = createHash('sha256');
    let bytes = 0;
    const fh = await open(tmp, 'wx', 0o644);
    try {
      if (!res.body) throw new ImageFetchError(`${what}: the answer has no body`);
      for await (const chunk of Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>)) {
        clearTimeout(idle);
        idle = setTimeout(() => abort.abort(new Error(`no data for ${IDLE_MS / 1000} s`)), IDLE_MS);
        const buf = chunk as Buffer;
        hash.update(buf);
        bytes += buf.length;
        await fh.write(buf);
      }
      await fh.sync();
    } catch (err) {
      if (err instanceof ImageFetchError) throw err;
      throw new ImageFetchError(`${what}: cut after ${bytes} bytes: ${describe(err, abort.signal)}`, { cause: err });
    } finally {
      await fh.close();
    }
    if (Number.isFinite(length) && bytes !== length) throw new ImageFetchError(`${what}: ${bytes} bytes received of ${length}`);
    const got = hash.digest('hex');
    if (got !== f.sha256) throw new ImageFetchError(`${what}: checksum mismatch: received sha256 ${got}, the database says ${f.sha256}: refused`);
    return { file: tmp, bytes };
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  } finally {
    clearTimeout(idle);
    f.signal?.removeEventListener('abort', onAbort);
  }
}

function describe(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) return String((signal.reason as Error | undefined)?.message ?? signal.reason ?? 'aborted');
  const e = err as Error & { cause?: { code?: string; message?: string } };
  return e.cause?.code ? `${e.cause.code} (${e.cause.message ?? ''})` : e.message;
}
