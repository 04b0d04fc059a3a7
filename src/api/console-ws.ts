/**
 * `GET /api/v1/nodes/{node}/console` as a WebSocket: the node's shared serial console (ConsoleHub).
 * The same checks as every operation: the token (Bearer) or the web UI's session cookie, and the
 * role: a viewer watches, an operator also types. A browser's handshake must come from this
 * listener's own origin (no other site's page may open it with the user's cookie).
 *
 * Frames: binary from the server is console output; text from the server is a JSON control
 * message (`attached` with `via`, `canType`, `scrollback`, `resizable`, `size`; `viewers`; `size`;
 * `readonly`; `invalid`; `error`; `closed`). Binary from the client is keystrokes; text from the
 * client is a JSON control message (console-control.ts: `resize`), and a bad one is answered with
 * `invalid` and counted, never more.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { findNode } from '../nodes/select.js';
import { createDriver } from '../power/index.js';
import { powerSettings } from '../power/settings.js';
import { errorMessage } from '../util/errors.js';
import { API_BASE } from './app.js';
import { authenticateRequest } from './auth.js';
import type { ApiContext } from './context.js';
import { errorBody, toApiError, ApiError } from './errors.js';
import { allows } from './operation.js';
import type { ConsoleViewer } from './console-hub.js';
import { parseConsoleControl } from './console-control.js';

const PATH = new RegExp(`^${API_BASE}/nodes/([^/?]+)/console/?(?:\\?.*)?$`);
/** Keystrokes are small; a paste of a script is fine, a flood is not. */
const MAX_FRAME = 64 * 1024;

function refuse(socket: Duplex, err: unknown): void {
  const e = toApiError(err);
  const body = JSON.stringify(errorBody(e));
  const reason = e.status === 401 ? 'Unauthorized' : e.status === 403 ? 'Forbidden' : e.status === 404 ? 'Not Found' : e.status === 400 ? 'Bad Request' : 'Error';
  if (socket.writable) socket.end(`HTTP/1.1 ${e.status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  else socket.destroy();
}

/** The listener's `upgrade` handler: console WebSockets; anything else is refused. */
export function consoleUpgrade(api: ApiContext): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME });
  return (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    void (async () => {
      const m = PATH.exec(req.url ?? '');
      if (!m) throw new ApiError(404, 'not_found', `no WebSocket at ${req.url ?? ''}: the console is ${API_BASE}/nodes/{node}/console`);
      const origin = req.headers.origin;
      if (origin !== undefined && new URL(origin).host !== req.headers.host) throw new ApiError(403, 'forbidden', `a console may be opened only from this listener's own pages, not from ${origin}`);
      const caller = await authenticateRequest(api.registry, api.sessions, req);
      if (!allows(caller.role, 'viewer')) throw new ApiError(403, 'forbidden', `token ${caller.name} may not watch consoles`);
      const config = api.config();
      const rec = await findNode(api.registry, decodeURIComponent(m[1]!));
      const node = await api.registry.resolve(rec, config.defaults);
      const settings = powerSettings(node.name, node.attrs, config.statedir);
      return { caller, node, settings, statedir: config.statedir };
    })().then(
      ({ caller, node, settings, statedir }) => {
        wss.handleUpgrade(req, socket, head, (ws) => void attach(api, ws, caller, node.name, () => createDriver({ name: node.name, nodeid: node.nodeid, settings }), statedir));
      },
      (err: unknown) => refuse(socket, err),
    );
  };
}

async function attach(api: ApiContext, ws: WebSocket, caller: { name: string; role: string }, node: string, driver: () => ReturnType<typeof createDriver>, statedir: string): Promise<void> {
  const canType = allows(caller.role as never, 'operator');
  const send = (msg: Record<string, unknown>) => ws.readyState === ws.OPEN && ws.send(JSON.stringify(msg));
  const viewer: ConsoleViewer = {
    who: `${caller.name} (${caller.role})`,
    canType,
    output: (d) => ws.readyState === ws.OPEN && ws.send(d, { binary: true }),
    control: send,
    end: (reason) => {
      send({ type: 'closed', reason });
      ws.close(1000, reason.slice(0, 120));
    },
  };
  let leave: (() => void) | null = null;
  let gone = false;
  ws.on('close', () => {
    gone = true;
    leave?.();
  });
  ws.on('error', () => ws.terminate());
  // The size told before the session was open is applied once attached.
  // (The cast keeps TypeScript from narrowing it to null: the message handler sets it.)
  let size = null as { cols: number; rows: number } | null;
  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], binary: boolean) => {
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    if (!binary) {
      const c = parseConsoleControl(buf.toString('utf8'));
      if (!c.ok) {
        api.consoles.badMessage(node, viewer, c.reason);
        send({ type: 'invalid', message: c.reason });
        return;
      }
      size = { cols: c.message.cols, rows: c.message.rows };
      if (leave) api.consoles.resize(node, viewer, size.cols, size.rows);
      return;
    }
    if (!api.consoles.input(node, viewer, buf)) send({ type: 'readonly', message: canType ? 'the console is not open' : `role ${caller.role} watches only: typing needs the operator role` });
  });
  try {
    const off = await api.consoles.join(node, driver, statedir, viewer);
    if (gone) off();
    else {
      leave = off;
      if (size) api.consoles.resize(node, viewer, size.cols, size.rows);
    }
  } catch (err) {
    send({ type: 'error', message: `the console of ${node} could not be opened: ${errorMessage(err)}` });
    ws.close(1011, 'console unavailable');
  }
}
