/**
 * The `ipmi` driver: ipmitool over IPMI 2.0 lanplus. The password travels in the environment
 * (`-E`, IPMI_PASSWORD) so it never shows in `ps`; `power.args` are added before the command (e.g.
 * `-C 17` for a cipher suite, `-L OPERATOR`). The console is `sol activate` in a pty.
 */
import { PowerError, MASK, type BootDevice, type CallOptions, type ConsoleSession, type Interrogation, type PowerAction, type PowerDriver, type PowerState, type PowerTarget, type PowerVerb } from '../types.js';
import { runCommand } from '../command.js';
import { shellQuote } from '../settings.js';
import { ptyConsole } from '../pty-console.js';

/** How long a SOL activation (or deactivation) may take: ipmitool's own retries fit well within. */
const SOL_OPEN_MS = 30_000;

/** ipmitool's chassis power verbs for ours. */
const CHASSIS: Record<PowerAction, string> = { on: 'on', off: 'off', shutdown: 'soft', reset: 'reset', cycle: 'cycle' };

export interface IpmiOptions {
  /** The ipmitool program (tests may point elsewhere). */
  ipmitool?: string;
}

export class IpmiDriver implements PowerDriver {
  readonly name = 'ipmi';
  readonly #target: PowerTarget;
  readonly #ipmitool: string;
  readonly #host: string;
  readonly #port: string | null;

  constructor(target: PowerTarget, { ipmitool = 'ipmitool' }: IpmiOptions = {}) {
    const address = target.settings.address;
    if (!address) throw new TypeError(`${target.name}: the ipmi driver needs power.address (the BMC's host[:port])`);
    this.#target = target;
    this.#ipmitool = ipmitool;
    // host:port, [v6]:port, or a bare host.
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(address) ?? /^([^:]+)(?::(\d+))?$/.exec(address);
    if (!m) throw new TypeError(`${target.name}: power.address ${JSON.stringify(address)} is not host[:port]`);
    this.#host = m[1]!;
    this.#port = m[2] ?? null;
  }

  /** The ipmitool arguments before the command. */
  #base(): string[] {
    const s = this.#target.settings;
    const a = ['-I', 'lanplus', '-H', this.#host];
    if (this.#port) a.push('-p', this.#port);
    if (s.user) a.push('-U', s.user);
    if (s.password !== null) a.push('-E');
    return [...a, ...s.args];
  }

  async #run(command: string[], options: CallOptions = {}): Promise<string> {
    const s = this.#target.settings;
    const env = { ...process.env, IPMI_PASSWORD: s.password ?? '' };
    const { stdout } = await runCommand(this.#ipmitool, [...this.#base(), ...command], {
      env,
      signal: options.signal,
      label: `ipmitool ${command.join(' ')} (${this.#target.settings.address})`,
      secrets: [s.password],
    });
    return stdout;
  }

  async power(action: PowerAction, options?: CallOptions): Promise<void> {
    await this.#run(['chassis', 'power', CHASSIS[action]], options);
  }

  async status(options?: CallOptions): Promise<PowerState> {
    const out = await this.#run(['chassis', 'power', 'status'], options);
    const m = /power is (on|off)/i.exec(out);
    if (!m) throw new PowerError(`ipmitool chassis power status (${this.#target.settings.address}): unexpected answer ${JSON.stringify(out.trim())}`);
    return m[1]!.toLowerCase() as PowerState;
  }

  async bootdev(device: BootDevice, persistent: boolean, options?: CallOptions): Promise<void> {
    const cmd = ['chassis', 'bootdev', device === 'pxe' ? 'pxe' : 'disk'];
    if (persistent) cmd.push('options=persistent');
    await this.#run(cmd, options);
  }

  async interrogate(options?: CallOptions): Promise<Interrogation> {
    const info: Interrogation = {};
    const sections: Array<[string, string[]]> = [
      ['mc', ['mc', 'info']],
      ['fru', ['fru', 'print', '0']],
      ['chassis', ['chassis', 'status']],
      ['sensor', ['sdr', 'elist']],
      ['sel', ['sel', 'elist', 'last', '10']],
    ];
    for (const [prefix, cmd] of sections) {
      let out: string;
      try {
        out = await this.#run(cmd, options);
      } catch (err) {
        // A BMC without FRU or SDRs still tells the rest.
        if (options?.signal?.aborted) throw err;
        continue;
      }
      parseColonLines(out, prefix, info);
    }
    if (Object.keys(info).length === 0) throw new PowerError(`ipmitool (${this.#target.settings.address}): the BMC told nothing`);
    return info;
  }

  /**
   * `sol activate` in a pty. The BMC has ONE SOL session: one left active by another client (an
   * ipmitool killed with -9, another admin's still running) makes it refuse ours ("SOL payload
   * already active on another session"), so it is deactivated first: the console is reclaimed for
   * us, as `provisiond console` and the web UI expect. The console is open once ipmitool says the
   * session is operational; if the BMC still refuses, the open fails with what ipmitool printed.
   */
  async console(): Promise<ConsoleSession> {
    const s = this.#target.settings;
    // "already deactivated" is an error to ipmitool and the normal case here.
    await this.#run(['sol', 'deactivate'], { signal: AbortSignal.timeout(SOL_OPEN_MS) }).catch(() => {});
    return ptyConsole(this.#ipmitool, [...this.#base(), 'sol', 'activate'], {
      env: { ...process.env, IPMI_PASSWORD: s.password ?? '' },
      via: `ipmitool sol activate (${s.address})`,
      ready: { marker: 'SOL Session operational', timeoutMs: SOL_OPEN_MS },
      onClose: () => this.#run(['sol', 'deactivate'], { signal: AbortSignal.timeout(SOL_OPEN_MS) }).then(() => {}, () => {}),
    });
  }

  describe(verb: PowerVerb, detail?: string, reveal = false): string {
    const cmd: string[] =
      verb === 'status' ? ['chassis', 'power', 'status']
      : verb === 'bootdev' ? ['chassis', 'bootdev', ...(detail ?? 'pxe').split(' ').map((w) => (w === 'persistent' ? 'options=persistent' : w))]
      : verb === 'interrogate' ? ['mc', 'info']
      : verb === 'console' ? ['sol', 'activate']
      : ['chassis', 'power', CHASSIS[verb]];
    const pw = this.#target.settings.password;
    const env = pw !== null ? `IPMI_PASSWORD=${reveal ? shellQuote(pw) : MASK} ` : '';
    return env + [this.#ipmitool, ...this.#base(), ...cmd].map(shellQuote).join(' ');
  }
}

/** `Key : value` lines (ipmitool's format) into `prefix.key` entries; other lines become numbered ones. */
function parseColonLines(out: string, prefix: string, into: Interrogation): void {
  let n = 0;
  for (const line of out.split('\n')) {
    if (!line.trim()) continue;
    const m = /^\s*([^:|]+?)\s*:\s(.*)$/.exec(line);
    if (m && prefix !== 'sensor' && prefix !== 'sel') into[`${prefix}.${m[1]!.toLowerCase().replace(/\s+/g, '_')}`] = m[2]!.trim();
    else into[`${prefix}.${++n}`] = line.trim();
  }
}
