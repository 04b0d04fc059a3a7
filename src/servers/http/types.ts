/**
 * What the HTTP server asks of the daemon. The server knows sockets, URLs and files; every decision
 * about nodes (who is asking, which script, which kernel) is one of these callbacks.
 */
import type { Readable } from 'node:stream';
import type { TransferReport } from './file-sender.js';
import type { ExportedTree } from './safe-path.js';

export interface NodescriptRequest {
  state: string;
  /** Canonical hardware address from `?nodeid=`, or null when the request carried none. */
  nodeid: string | null;
  /** The client's IPv4 address. */
  addr: string;
  /** Aborted when the client goes away: the engine stops the node's scripts. */
  signal: AbortSignal;
  /** The node credential the request presented (`Authorization: Bearer` or `X-Provisiond-Credential`), or null. */
  credential: string | null;
}

/** The server's routes, as `request` reports them. */
export type HttpRoute = 'nodescripts' | 'ipxe-script' | 'boot' | 'files' | 'events' | 'actions' | 'upload' | 'healthz' | 'peer' | 'other';

/** One request, once its response ended (`complete`) or its connection closed first. */
export interface HttpRequestReport {
  route: HttpRoute;
  method: string;
  status: number;
  complete: boolean;
  /** Body bytes of a file transfer; for other routes, the bytes written to the socket (headers included). */
  bytes: number;
  durationMs: number;
}

export interface HttpHandlers {
  /** The node's concatenated script for `state`, as a stream. Throw HttpError for 4xx. */
  nodescript(req: NodescriptRequest): Promise<Readable>;
  /** The iPXE script for `nodeid` (`/boot/<MAC>.ipxe`), or for the client's address (`/boot/boot.ipxe`). */
  ipxeScript(req: { nodeid: string | null; addr: string }): Promise<string>;
  /** Absolute path of a boot file (`/boot/vmlinuz`, `/boot/vnfs/NAME/vmlinuz`, a loader); throw HttpError(404). */
  bootFile(req: { segments: string[]; addr: string }): Promise<string>;
  /**
   * A node's ready agent asking for work (`GET /nodes/<MAC>/actions?wait=S`): the script of the next
   * action, waiting up to `waitMs` for one (null: none; the server answers 204). Throw HttpError to refuse.
   */
  nodeActions?(req: { nodeid: string; addr: string; credential: string | null; waitMs: number; signal: AbortSignal }): Promise<string | null>;
  /**
   * An upload to a one-time URL (`PUT|POST /nodes/<MAC>/upload/<TOKEN>`): `body` is the request
   * stream, `length` its Content-Length (null: chunked). `failed`: the node reports it could not
   * make the upload (`?failed=REASON`, empty body). Resolves with the text answered; throw HttpError to refuse.
   */
  upload?(req: { nodeid: string; token: string; addr: string; credential: string | null; body: Readable; length: number | null; failed: string | null }): Promise<string>;
  /** A node reporting its progress. */
  nodeEvent(ev: { nodeid: string; stage: string; msg: string | null; addr: string; credential: string | null }): Promise<void>;
  /**
   * Called before a getfile is served: may refuse it (throw HttpError: a protected file without the
   * right credential); the VNFS image is rebuilt here when its tree changed.
   */
  beforeGetfile?(file: { tree: string; relative: string; file: string; addr: string; credential: string | null }): Promise<void>;
  /**
   * Another server fetching a file of a VNFS image (`GET /cluster/vnfs/<NAME>/<FILE>`): checks its
   * credential (`authorization` is the header as sent) and answers the file's path and sha256 (sent
   * as `X-Provisiond-Sha256`). Throw HttpError to refuse (401 with the reason).
   */
  peerFile?(req: { vnfs: string; file: string; path: string; authorization: string | null; addr: string }): Promise<{ file: string; sha256: string }>;
  /** Every boot-file and getfile transfer, once finished or cut. */
  transfer?(t: TransferReport & { route: 'boot' | 'files'; addr: string; url: string; waitedMs: number }): void;
  /** Every request, once answered (the daemon's metrics). */
  request?(r: HttpRequestReport): void;
  /** A request Node's HTTP parser could not read (no route, no handler ran), with the status it was answered. */
  malformed?(status: 400 | 408 | 431): void;
  /**
   * Whether to take a new connection from `addr`: false closes it before a byte is read (an address
   * flooding bad credentials costs an accept, not a request).
   */
  acceptConnection?(addr: string): boolean;
  /** Extra fields of the `/healthz` answer. */
  health?(): Record<string, unknown>;
}

export interface HttpServerOptions {
  listen: string;
  port: number;
  /** getfile trees by first segment (`vnfs`, `files`); paths naming none go to `fallbackTree`. */
  trees: ExportedTree[];
  fallbackTree?: ExportedTree;
  /** URL prefixes of getfile: `files`, plus config vnfs.prefix when set. */
  filePrefixes: string[];
  maxScriptRequestsPerAddress: number;
  /** Idle and request-receive timeout, ms. */
  requestTimeoutMs: number;
  /** Bytes; default 16 KiB. */
  maxHeaderSize?: number;
  /** Characters; default 4096. */
  maxUrlLength?: number;
  /** How long close() lets transfers in flight run before cutting them, ms; default 30 s. */
  closeGraceMs?: number;
  /** Read size of file transfers. */
  chunkSize?: number;
  /** Large bodies through sendfile(2) on a thread of the native addon (default true; false: the JavaScript path). */
  zeroCopy?: boolean;
  /** Large transfers (boot files, getfile) sent at once; more wait their turn, first come first served (0: no limit). */
  maxTransfers?: number;
  /** Files from this size (bytes) need a transfer slot (default 1 MiB). */
  admissionMinBytes?: number;
}
