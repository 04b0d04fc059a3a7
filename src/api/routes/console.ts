/**
 * The console's entry in the document: `GET /nodes/{node}/console` is a WebSocket (console-ws.ts
 * serves the upgrade); a plain GET gets a 426 saying so, after the same token and role checks.
 */
import { ApiError, errorSchema } from '../errors.js';
import { findNode } from '../node-access.js';
import { defineOperation } from '../operation.js';
import { nodeParam } from '../resource-schemas.js';

export const consoleOperations = [
  defineOperation({
    id: 'nodes.console',
    method: 'get',
    path: '/nodes/:node/console',
    tag: 'console',
    summary: "The node's serial console as a WebSocket, shared by every viewer (viewer: watch; operator: also type)",
    description:
      'Open it as a WebSocket (`ws://` or `wss://`, with a Bearer token or the web UI\'s session cookie; a browser only from this listener\'s own pages). One console session per node (ipmi SOL, QEMU serial, the exec driver\'s `console`), however many viewers: each gets the same output, first the scrollback (the console log\'s tail, then what the session printed since). Binary frames from the server are console output; text frames are JSON control messages: `attached` {via, canType, viewers, scrollback, resizable, size}, `viewers` {viewers}, `size` {cols, rows, by} (the far end\'s terminal size changed), `readonly`, `invalid` {message} (a client message refused), `error` {message} (e.g. the BMC refused), `closed` {reason}. Binary frames from the client are keystrokes, ignored unless the role is operator or above; text frames from the client are JSON control messages: `{"type":"resize","cols":C,"rows":R}` (whole numbers 1 to 1000) sets the terminal size of a pty console (ipmitool SOL, the exec `console`) when sent by an operator: the far end has the size of the operator who last resized or typed; a viewer\'s size is ignored. The session closes `api.consoleGrace` seconds after the last viewer left, freeing the BMC\'s SOL. Without the upgrade: 426.',
    access: 'viewer',
    params: nodeParam,
    response: { status: 101, description: 'switching to the WebSocket protocol' },
    extraResponses: { 426: { schema: errorSchema, description: 'not a WebSocket handshake' } },
    handler: async ({ api, params }) => {
      const node = await findNode(api.registry, params.node);
      throw new ApiError(426, 'upgrade_required', `the console of ${node.name} is a WebSocket: open ws(s)://HOST:PORT/api/v1/nodes/${encodeURIComponent(node.name)}/console`);
    },
  }),
];
