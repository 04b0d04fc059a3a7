/**
 * The `redfish` driver: DMTF Redfish over HTTP(S) JSON. `power.address` is the BMC's URL
 * (`https://bmc-n0001`); the ComputerSystem is `power.system` (a path such as
 * `/redfish/v1/Systems/1`) or the only member of `/redfish/v1/Systems`. Authentication is a Redfish
 * session (`power.auth: session`, the default: POST SessionService/Sessions, X-Auth-Token, DELETE on
 * the way out) or HTTP basic (`power.auth: basic`). TLS is verified against the system CAs, or only
 * against `power.ca` (a PEM file: the pinned CA), or not at all with `power.insecure: true`.
 */
import { readFileSync } from 'node:fs';
import { MASK, PowerError, UnsupportedVerbError, type BootDevice, type CallOptions, type ConsoleSession, type Interrogation, type PowerAction, type PowerDriver, type PowerState, type PowerTarget, type PowerVerb } from '../types.js';
import { maskSecrets } from '../settings.js';
import { RedfishHttp, type RedfishResponse } from './http.js';

const RESET_TYPE: Record<PowerAction, string> = { on: 'On', off: 'ForceOff', shutdown: 'GracefulShutdown', reset: 'ForceRestart', cycle: 'PowerCycle' };
const BOOT_TARGET: Record<BootDevice, string> = { pxe: 'Pxe', disk: 'Hdd' };

interface ComputerSystem {
  PowerState?: string;
  Actions?: Record<string, { target?: string; 'ResetType@Redfish.AllowableValues'?: string[] }>;
  [k: string]: unknown;
}

export class RedfishDriver implements PowerDriver {
  readonly name = 'redfish';
  readonly #target: PowerTarget;
  readonly #base: URL;
  readonly #auth: 'session' | 'basic';

  constructor(target: PowerTarget) {
    const s = target.settings;
    if (!s.address) throw new TypeError(`${target.name}: the redfish driver needs power.address (the BMC's URL, https://host)`);
    let url: URL;
    try {
      url = new URL(/^https?:\/\//.test(s.address) ? s.address : `https://${s.address}`);
    } catch {
      throw new TypeError(`${target.name}: power.address ${JSON.stringify(s.address)} is not a URL`);
    }
    const auth = s.raw.auth ?? 'session';
    if (auth !== 'session' && auth !== 'basic') throw new TypeError(`${target.name}: power.auth must be session or basic, not ${JSON.stringify(auth)}`);
    this.#target = target;
    this.#base = url;
    this.#auth = auth;
  }

  /** Opens an authenticated connection, runs `fn`, and always logs the session out. */
  async #with<T>(options: CallOptions, fn: (h: RedfishHttp) => Promise<T>): Promise<T> {
    const s = this.#target.settings;
    const ca = s.raw.ca ? readFileSync(s.raw.ca) : undefined;
    const h = new RedfishHttp(this.#base, {
      ca,
      insecure: s.raw.insecure === 'true',
      signal: options.signal,
      secrets: [s.password],
    });
    if (this.#auth === 'basic') h.basic(s.user ?? '', s.password ?? '');
    else await h.login(s.user ?? '', s.password ?? '');
    try {
      return await fn(h);
    } finally {
      await h.logout();
    }
  }

  async #systemPath(h: RedfishHttp): Promise<string> {
    if (this.#target.settings.raw.system) return this.#target.settings.raw.system;
    const col = await h.json<{ Members?: Array<{ '@odata.id': string }> }>('GET', '/redfish/v1/Systems');
    const members = col.body.Members ?? [];
    if (members.length === 1) return members[0]!['@odata.id'];
    throw new PowerError(`redfish ${this.#base.origin}: ${members.length} systems; set power.system to one of ${members.map((m) => m['@odata.id']).join(', ') || '(none)'}`);
  }

  async power(action: PowerAction, options: CallOptions = {}): Promise<void> {
    await this.#with(options, async (h) => {
      const path = await this.#systemPath(h);
      const sys = (await h.json<ComputerSystem>('GET', path)).body;
      const act = sys.Actions?.['#ComputerSystem.Reset'];
      if (!act?.target) throw new UnsupportedVerbError('redfish', action, `${path} has no #ComputerSystem.Reset action`);
      const allowed = act['ResetType@Redfish.AllowableValues'];
      const want = RESET_TYPE[action];
      if (allowed && !allowed.includes(want)) {
        // Many BMCs lack PowerCycle: do it as ForceOff then On.
        if (action === 'cycle' && allowed.includes('ForceOff') && allowed.includes('On')) {
          await h.json('POST', act.target, { ResetType: 'ForceOff' });
          await h.json('POST', act.target, { ResetType: 'On' });
          return;
        }
        throw new UnsupportedVerbError('redfish', action, `the BMC allows ResetType ${allowed.join(', ')}, not ${want}`);
      }
      await h.json('POST', act.target, { ResetType: want });
    });
  }

  async status(options: CallOptions = {}): Promise<PowerState> {
    return this.#with(options, async (h) => {
      const sys = (await h.json<ComputerSystem>('GET', await this.#systemPath(h))).body;
      const p = sys.PowerState;
      if (p === 'On' || p === 'PoweringOff' || p === 'Paused') return 'on';
      if (p === 'Off' || p === 'PoweringOn') return 'off';
      return 'unknown';
    });
  }

  async bootdev(device: BootDevice, persistent: boolean, options: CallOptions = {}): Promise<void> {
    await this.#with(options, async (h) => {
      const path = await this.#systemPath(h);
      const got: RedfishResponse<ComputerSystem> = await h.json<ComputerSystem>('GET', path);
      const body = { Boot: { BootSourceOverrideTarget: BOOT_TARGET[device], BootSourceOverrideEnabled: persistent ? 'Continuous' : 'Once' } };
      await h.json('PATCH', path, body, got.etag ? { 'If-Match': got.etag } : {});
    });
  }

  async interrogate(options: CallOptions = {}): Promise<Interrogation> {
    return this.#with(options, async (h) => {
      const path = await this.#systemPath(h);
      const sys = (await h.json<ComputerSystem>('GET', path)).body;
      const info: Interrogation = { 'system.path': path };
      for (const k of ['Manufacturer', 'Model', 'SerialNumber', 'SKU', 'PartNumber', 'UUID', 'BiosVersion', 'HostName', 'PowerState']) {
        if (typeof sys[k] === 'string') info[`system.${k}`] = sys[k] as string;
      }
      const status = sys.Status as { Health?: string; State?: string } | undefined;
      if (status?.Health) info['system.Health'] = status.Health;
      if (status?.State) info['system.State'] = status.State;
      const mem = sys.MemorySummary as { TotalSystemMemoryGiB?: number } | undefined;
      if (mem?.TotalSystemMemoryGiB !== undefined) info['system.MemoryGiB'] = String(mem.TotalSystemMemoryGiB);
      const cpu = sys.ProcessorSummary as { Count?: number; Model?: string } | undefined;
      if (cpu?.Count !== undefined) info['system.Processors'] = `${cpu.Count}${cpu.Model ? ` x ${cpu.Model}` : ''}`;
      const boot = sys.Boot as { BootSourceOverrideTarget?: string; BootSourceOverrideEnabled?: string } | undefined;
      if (boot?.BootSourceOverrideTarget) info['system.BootOverride'] = `${boot.BootSourceOverrideTarget} (${boot.BootSourceOverrideEnabled ?? '?'})`;
      return info;
    });
  }

  async console(): Promise<ConsoleSession> {
    throw new UnsupportedVerbError('redfish', 'console', 'Redfish has no serial console; use the ipmi driver (SOL) or the exec driver for this node');
  }

  describe(verb: PowerVerb, detail?: string, reveal = false): string {
    const s = this.#target.settings;
    const who = `${this.#auth} auth as ${s.user ?? '(no user)'}${s.password !== null ? ` password ${reveal ? s.password : MASK}` : ''}`;
    const sys = s.raw.system ?? '<the one /redfish/v1/Systems member>';
    const what =
      verb === 'status' ? `GET ${sys} (PowerState)`
      : verb === 'bootdev' ? `PATCH ${sys} {"Boot":{"BootSourceOverrideTarget":"${BOOT_TARGET[(detail?.split(' ')[0] ?? 'pxe') as BootDevice] ?? detail}","BootSourceOverrideEnabled":"${detail?.includes('persistent') ? 'Continuous' : 'Once'}"}}`
      : verb === 'interrogate' ? `GET ${sys}`
      : verb === 'console' ? '(no console)'
      : `POST ${sys}/Actions/ComputerSystem.Reset {"ResetType":"${RESET_TYPE[verb]}"}`;
    const line = `redfish ${this.#base.origin} (${who}): ${what}`;
    return reveal ? line : maskSecrets(line, [s.password]);
  }
}
