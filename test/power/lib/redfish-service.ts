/**
 * A small Redfish service for the redfish driver's tests. No Redfish emulator is packaged here
 * (DMTF's Redfish-Interface-Emulator is not in Debian), so this follows the DMTF schema for the
 * resources the driver uses: ServiceRoot, SessionService/Sessions (X-Auth-Token + Location), the
 * Systems collection, ComputerSystem (PowerState, Boot override, ETag) and its
 * #ComputerSystem.Reset action with ResetType@Redfish.AllowableValues; errors in the Redfish
 * `{"error": {"@Message.ExtendedInfo": [...]}}` shape.
 */
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';

export interface RedfishServiceOptions {
  user: string;
  password: string;
  /** ResetTypes the BMC allows (a real one often lacks PowerCycle). */
  resetTypes?: string[];
  tls?: { key: Buffer; cert: Buffer };
}

export interface RedfishService {
  url: string;
  state: { power: 'On' | 'Off'; bootTarget: string; bootEnabled: string; resets: string[]; sessions: Set<string>; etag: number; patchesWithoutIfMatch: number };
  close(): Promise<void>;
}

const SYS = '/redfish/v1/Systems/1';

export async function startRedfishService(o: RedfishServiceOptions): Promise<RedfishService> {
  const resetTypes = o.resetTypes ?? ['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart', 'PowerCycle'];
  const state: RedfishService['state'] = { power: 'Off', bootTarget: 'None', bootEnabled: 'Disabled', resets: [], sessions: new Set(), etag: 1, patchesWithoutIfMatch: 0 };
  let nextSession = 1;
  const error = (res: ServerResponse, status: number, msg: string) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'Base.1.8.GeneralError', message: msg, '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.GeneralError', Message: msg }] } }));
  };
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'OData-Version': '4.0', ...headers });
    res.end(JSON.stringify(body));
  };
  const authorized = (req: IncomingMessage): boolean => {
    const token = req.headers['x-auth-token'];
    if (typeof token === 'string' && state.sessions.has(token)) return true;
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    return basic !== null && Buffer.from(basic[1]!, 'base64').toString() === `${o.user}:${o.password}`;
  };
  const system = () => ({
    '@odata.id': SYS,
    '@odata.type': '#ComputerSystem.v1_20_0.ComputerSystem',
    Id: '1',
    Name: 'Test node',
    Manufacturer: 'Contoso',
    Model: 'HPC-1U',
    SerialNumber: 'SN0001',
    PowerState: state.power,
    Status: { State: 'Enabled', Health: 'OK' },
    ProcessorSummary: { Count: 2, Model: 'Test CPU' },
    MemorySummary: { TotalSystemMemoryGiB: 256 },
    Boot: { BootSourceOverrideTarget: state.bootTarget, BootSourceOverrideEnabled: state.bootEnabled, 'BootSourceOverrideTarget@Redfish.AllowableValues': ['None', 'Pxe', 'Hdd'] },
    Actions: { '#ComputerSystem.Reset': { target: `${SYS}/Actions/ComputerSystem.Reset`, 'ResetType@Redfish.AllowableValues': resetTypes } },
  });

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      let body: Record<string, unknown> = {};
      try {
        if (chunks.length) body = JSON.parse(Buffer.concat(chunks).toString());
      } catch {
        return error(res, 400, 'malformed JSON');
      }
      const p = url.pathname.replace(/\/$/, '');
      if (req.method === 'GET' && p === '/redfish/v1') {
        return json(res, 200, { '@odata.id': '/redfish/v1', RedfishVersion: '1.15.0', Systems: { '@odata.id': '/redfish/v1/Systems' }, SessionService: { '@odata.id': '/redfish/v1/SessionService' } });
      }
      if (req.method === 'POST' && p === '/redfish/v1/SessionService/Sessions') {
        if (body.UserName !== o.user || body.Password !== o.password) return error(res, 401, 'The authentication credentials are invalid.');
        const token = `tok-${nextSession}-${Math.random().toString(36).slice(2)}`;
        const loc = `/redfish/v1/SessionService/Sessions/${nextSession++}`;
        state.sessions.add(token);
        sessionsByPath.set(loc, token);
        return json(res, 201, { '@odata.id': loc, UserName: o.user }, { 'X-Auth-Token': token, Location: loc });
      }
      if (!authorized(req)) return error(res, 401, 'Authentication required.');
      if (req.method === 'DELETE' && sessionsByPath.has(p)) {
        state.sessions.delete(sessionsByPath.get(p)!);
        sessionsByPath.delete(p);
        res.writeHead(204).end();
        return;
      }
      if (req.method === 'GET' && p === '/redfish/v1/Systems') {
        return json(res, 200, { '@odata.id': '/redfish/v1/Systems', 'Members@odata.count': 1, Members: [{ '@odata.id': SYS }] });
      }
      if (req.method === 'GET' && p === SYS) return json(res, 200, system(), { ETag: `W/"${state.etag}"` });
      if (req.method === 'PATCH' && p === SYS) {
        const ifMatch = req.headers['if-match'];
        if (ifMatch === undefined) state.patchesWithoutIfMatch++;
        else if (ifMatch !== `W/"${state.etag}"`) return error(res, 412, 'The ETag does not match.');
        const boot = body.Boot as { BootSourceOverrideTarget?: string; BootSourceOverrideEnabled?: string } | undefined;
        if (!boot?.BootSourceOverrideTarget || !['None', 'Pxe', 'Hdd'].includes(boot.BootSourceOverrideTarget)) return error(res, 400, 'BootSourceOverrideTarget is not allowed.');
        state.bootTarget = boot.BootSourceOverrideTarget;
        state.bootEnabled = boot.BootSourceOverrideEnabled ?? 'Once';
        state.etag++;
        return json(res, 200, system());
      }
      if (req.method === 'POST' && p === `${SYS}/Actions/ComputerSystem.Reset`) {
        const t = String(body.ResetType);
        if (!resetTypes.includes(t)) return error(res, 400, `The value ${t} for the property ResetType is not in the list of acceptable values.`);
        state.resets.push(t);
        if (t === 'On' || t === 'PowerCycle' || t === 'ForceRestart') state.power = t === 'ForceRestart' && state.power === 'Off' ? 'Off' : 'On';
        if (t === 'ForceOff' || t === 'GracefulShutdown') state.power = 'Off';
        res.writeHead(204).end();
        return;
      }
      error(res, 404, `no resource ${p}`);
    });
  };
  const sessionsByPath = new Map<string, string>();
  const server: Server = o.tls ? createHttps({ key: o.tls.key, cert: o.tls.cert }, handler) : createHttp(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `${o.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    state,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
