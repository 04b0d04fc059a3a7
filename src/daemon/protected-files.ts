/**
 * Which getfile paths are protected, and for whom (issue 23): `nodefiles/<NODE>/...` only for that
 * node, `groupfiles/<GROUP>/...` only for a node of that group, and `files/` or `vnfs/` paths
 * matching a `security.protect` glob for any node; each presenting its current credential. A
 * refusal naming another node is written into that node's timeline.
 */
import type { Booter } from '../boot/booter.js';
import type { Config } from '../config/schema.js';
import type { RegistryStore } from '../registry/types.js';
import { HttpError } from '../servers/http/errors.js';
import { pathMatcher } from '../util/path-glob.js';
import type { NodeIdentity } from './node-identity.js';
import type { TimelineRecorder } from './timeline.js';

export interface ProtectedFilesDeps {
  identity: NodeIdentity;
  booter: Pick<Booter, 'resolve'>;
  registry: RegistryStore;
  timeline: TimelineRecorder;
  config(): Config;
}

export class ProtectedFiles {
  #globs: readonly string[] = [];
  #matches: (path: string) => boolean = () => false;

  constructor(private readonly deps: ProtectedFilesDeps) {}

  /** Whether `tree/relative` (`files/keys/munge.key`) is listed in security.protect. */
  #listed(path: string): boolean {
    const globs = this.deps.config().security.protect;
    if (globs !== this.#globs) {
      this.#globs = globs;
      this.#matches = pathMatcher(globs);
    }
    return this.#matches(path);
  }

  /** Resolves when the request may have the file; throws HttpError 401/403 otherwise. */
  async check({ tree, relative, addr, credential }: { tree: string; relative: string; addr: string; credential: string | null }): Promise<void> {
    const path = `${tree}/${relative}`;
    const perNode = tree === 'nodefiles' || tree === 'groupfiles';
    if (!perNode && !this.#listed(path)) return;
    if (!this.deps.identity.enabled && !perNode) return;
    if (!this.deps.identity.enabled) throw new HttpError(403, `getfile ${path} refused: protected files need node credentials (security.nodeCredentials)`);
    const owner = await this.deps.identity.owner(credential, addr, `getfile ${path}`);
    if (!perNode) return;
    const wanted = relative.split('/')[0]!;
    const mine = tree === 'nodefiles' ? owner.name : (await this.deps.booter.resolve(owner)).group;
    if (mine === wanted) return;
    this.deps.identity.counters.refused++;
    if (tree === 'nodefiles') {
      const victim = await this.deps.registry.getNode(wanted);
      if (victim) this.deps.timeline({ nodeid: victim.nodeid, source: 'http', stage: 'refused', msg: `getfile ${path} from ${addr}: asked by ${owner.name}`, ok: false, addr });
    }
    this.deps.timeline({ nodeid: owner.nodeid, source: 'http', stage: 'refused', msg: `getfile ${path}: not a file of ${tree === 'nodefiles' ? 'this node' : `its group ${mine}`}`, ok: false, addr });
    throw new HttpError(403, `getfile ${path} refused: ${owner.name} ${tree === 'nodefiles' ? 'is not that node' : `is in group ${mine}`}`, { headers: { Connection: 'close' } });
  }
}
