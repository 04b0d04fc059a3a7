/**
 * What a server hands another server fetching an image (`GET /cluster/vnfs/<NAME>/<FILE>` of its
 * HTTP service): the image or skeleton it holds, to a caller presenting a peer signature made with
 * the cluster secret (peer-auth.ts) or an admin API token. Anyone else gets 401 with the reason, a
 * token of a lesser role 403: the image may hold what `security.protect` keeps from other callers.
 */
import { join } from 'node:path';
import { ApiError } from '../api/errors.js';
import { callerOfHash } from '../api/auth.js';
import type { Logger } from '../log/logger.js';
import { hashToken } from '../registry/tokens.js';
import type { RegistryStore } from '../registry/types.js';
import { HttpError } from '../servers/http/errors.js';
import { errorMessage } from '../util/errors.js';
import { capsuleDir, IMAGE_FILE, readLocalImage, SKELETON_FILE } from '../vnfs/index.js';
import { PEER_SCHEME, peerRefusal } from './peer-auth.js';

const CHALLENGE = { 'WWW-Authenticate': `${PEER_SCHEME}, Bearer` };

export class PeerFiles {
  #secret: string | null = null;

  constructor(private readonly deps: { registry: RegistryStore; statedir: () => string; log: Logger }) {}

  /** Resolves with who asked when `authorization` may fetch `path`; HttpError 401/403 otherwise. */
  async authorize(authorization: string | null, path: string): Promise<string> {
    const refuse = (why: string) => new HttpError(401, `peer image fetch refused: ${why}`, { headers: CHALLENGE });
    if (!authorization) throw refuse(`no credential: send the cluster secret's signature (Authorization: ${PEER_SCHEME} MS:HMAC, what servers on one database send) or an admin token (Authorization: Bearer TOKEN)`);
    if (new RegExp(`^${PEER_SCHEME}\\s`, 'i').test(authorization)) {
      try {
        this.#secret ??= await this.deps.registry.clusterSecret();
      } catch (err) {
        throw new HttpError(503, `peer image fetch: the cluster secret cannot be read: ${errorMessage(err)}`, { headers: { 'Retry-After': '10' } });
      }
      const why = peerRefusal(this.#secret, authorization, path);
      if (why) throw refuse(why);
      return 'a server of the database';
    }
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!bearer) throw refuse(`the Authorization header is neither "${PEER_SCHEME} MS:HMAC" nor "Bearer TOKEN"`);
    let caller;
    try {
      caller = await callerOfHash(this.deps.registry, hashToken(bearer[1]!));
    } catch (err) {
      if (err instanceof ApiError) throw refuse(err.message);
      throw err;
    }
    if (caller.role !== 'admin') throw new HttpError(403, `peer image fetch refused: token ${caller.name} has role ${caller.role}, an image needs admin`);
    return `token ${caller.name}`;
  }

  /** The file and its sha256, for `GET /cluster/vnfs/<NAME>/<FILE>`. */
  async locate(req: { vnfs: string; file: string; path: string; authorization: string | null; addr: string }): Promise<{ file: string; sha256: string }> {
    const who = await this.authorize(req.authorization, req.path);
    if (req.file !== IMAGE_FILE && req.file !== SKELETON_FILE) throw new HttpError(404, `not found: ${req.file} is not a file servers fetch (${IMAGE_FILE}, ${SKELETON_FILE})`);
    let dir: string;
    try {
      dir = capsuleDir(this.deps.statedir(), req.vnfs);
    } catch (err) {
      throw new HttpError(400, errorMessage(err));
    }
    const local = await readLocalImage(this.deps.statedir(), req.vnfs);
    const sha256 = req.file === IMAGE_FILE ? local?.sha256 : local?.skeletonSha256;
    if (!sha256) throw new HttpError(404, `not found: vnfs ${req.vnfs} has no ${req.file} on this server`);
    this.deps.log.info({ vnfs: req.vnfs, file: req.file, addr: req.addr, who, sha256 }, `vnfs ${req.vnfs}: ${req.file} sent to ${who} at ${req.addr}`);
    return { file: join(dir, req.file), sha256 };
  }
}
