/**
 * Fetches the current image of a VNFS from the servers holding it (`fetchCurrentImage`), each file
 * from one server (`GET /cluster/vnfs/NAME/FILE` of its HTTP service, signed with the cluster
 * secret: peer-auth.ts) into a temp file, hashing as it writes. A file is kept only when its
 * sha256 is the database's; otherwise the temp file is removed and the reason given. A transfer
 * silent for 30 s is cut.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { RegistryStore, VnfsImageRecord } from '../registry/types.js';
import { errorMessage, ProvisiondError } from '../util/errors.js';
import { capsuleDir, IMAGE_FILE, installImage, SKELETON_FILE } from '../vnfs/index.js';
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

export interface CurrentImageFetch {
  registry: Pick<RegistryStore, 'imageHolders'>;
  statedir: string;
  /** This server's address: not asked. */
  self: string;
  secret: string;
  record: VnfsImageRecord;
  signal: AbortSignal;
  /** Runs the install step (the renames into the capsule) one at a time with the caller's other decisions about the VNFS. */
  serialize?: (install: () => Promise<void>) => Promise<void>;
}

/**
 * Fetches `record`'s image (and skeleton) from a server holding it, and installs it with the
 * record's config: servers whose heartbeat is live first, the builder first among them, then the
 * others (a heartbeat late by a few seconds does not make a server unable to send a file). Null
 * when aborted; rejects with every server's reason when none could supply it.
 */
export async function fetchCurrentImage(o: CurrentImageFetch): Promise<{ server: string; bytes: number; seconds: number } | null> {
  const rec = o.record;
  const holders = (await o.registry.imageHolders(rec.vnfs)).filter((h) => h.sha256 === rec.sha256 && h.server !== o.self);
  if (holders.length === 0) throw new ImageFetchError('no other server holds it');
  const rank = (h: { server: string; live: boolean }) => (h.live ? 2 : 0) + (h.server === rec.builder ? 1 : 0);
  const reasons: string[] = [];
  for (const h of [...holders].sort((a, b) => rank(b) - rank(a))) {
    if (o.signal.aborted) return null;
    try {
      return await fetchFrom(h.server, o);
    } catch (err) {
      reasons.push(errorMessage(err));
    }
  }
  if (o.signal.aborted) return null;
  throw new ImageFetchError(reasons.join('; '));
}

async function fetchFrom(server: string, o: CurrentImageFetch): Promise<{ server: string; bytes: number; seconds: number }> {
  const rec = o.record;
  const dir = capsuleDir(o.statedir, rec.vnfs);
  await mkdir(dir, { recursive: true });
  const t0 = performance.now();
  const common = { server, vnfs: rec.vnfs, secret: o.secret, dir, signal: o.signal };
  const image = await fetchPeerFile({ ...common, file: IMAGE_FILE, sha256: rec.sha256 });
  let skeleton: { file: string; bytes: number } | null = null;
  try {
    if (rec.skeletonSha256) skeleton = await fetchPeerFile({ ...common, file: SKELETON_FILE, sha256: rec.skeletonSha256 });
    const sk = skeleton && rec.skeletonSha256 ? { file: skeleton.file, sha256: rec.skeletonSha256 } : null;
    const install = async (): Promise<void> => {
      // Checked where the install is serialized: a publish made meanwhile here is not overwritten.
      if (o.signal.aborted) throw new ImageFetchError('superseded');
      await installImage(o.statedir, rec.vnfs, { image: image.file, sha256: rec.sha256, skeleton: sk, config: rec.config });
    };
    await (o.serialize ? o.serialize(install) : install());
  } catch (err) {
    await rm(image.file, { force: true });
    if (skeleton) await rm(skeleton.file, { force: true });
    throw err;
  }
  return { server, bytes: image.bytes + (skeleton?.bytes ?? 0), seconds: (performance.now() - t0) / 1000 };
}
