/**
 * The `exec` driver, OpenNebula's model: `power.dir` holds one executable per verb (`on`, `off`,
 * `shutdown`, `reset`, `cycle`, `status`, `bootdev`, `interrogate`, `console`). Each is called as
 *
 *     <dir>/<verb> NODENAME NODEID [verb arguments...] [power.args...]
 *
 * (`bootdev` gets `pxe|disk` and, when asked, `persistent`) with the environment NODENAME, NODEID,
 * POWER_VERB, POWER_ADDRESS, POWER_USER, POWER_PASSWORD and every other `power.<key>` as
 * POWER_<KEY>. Stdout is the answer (`status` prints `on`, `off` or `unknown`; `interrogate` prints
 * `key: value` lines); a non-zero exit is a failure whose stderr is the message. A missing `cycle` is
 * done as `off` then `on`; any other missing verb is a clear "cannot".
 */
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { PowerError, MASK, UnsupportedVerbError, type BootDevice, type CallOptions, type ConsoleSession, type Interrogation, type PowerAction, type PowerDriver, type PowerState, type PowerTarget, type PowerVerb } from '../types.js';
import { runCommand } from '../command.js';
import { shellQuote } from '../settings.js';
import { ptyConsole } from '../pty-console.js';

export class ExecDriver implements PowerDriver {
  readonly name = 'exec';
  readonly #target: PowerTarget;
  readonly #dir: string;

  constructor(target: PowerTarget) {
    if (!target.settings.dir) throw new TypeError(`${target.name}: the exec driver needs power.dir (a folder of executables named after the verbs)`);
    this.#target = target;
    this.#dir = target.settings.dir;
  }

  #program(verb: PowerVerb): string | null {
    const file = join(this.#dir, verb);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      return null;
    }
  }

  #env(verb: PowerVerb, secret: boolean): NodeJS.ProcessEnv {
    const { name, nodeid, settings: s } = this.#target;
    const env: NodeJS.ProcessEnv = { ...process.env, NODENAME: name, NODEID: nodeid, POWER_VERB: verb };
    for (const [k, v] of Object.entries(s.raw)) {
      if (k === 'password' || k === 'passwordFile') continue;
      env[`POWER_${k.replace(/[^A-Za-z0-9]/g, '_').toUpperCase()}`] = v;
    }
    if (s.password !== null) env.POWER_PASSWORD = secret ? s.password : MASK;
    return env;
  }

  #argv(extra: string[]): string[] {
    return [this.#target.name, this.#target.nodeid, ...extra, ...this.#target.settings.args];
  }

  async #run(verb: PowerVerb, extra: string[], options: CallOptions = {}): Promise<string> {
    const file = this.#program(verb);
    if (!file) throw new UnsupportedVerbError('exec', verb, `no executable ${join(this.#dir, verb)}`);
    const { stdout } = await runCommand(file, this.#argv(extra), {
      env: this.#env(verb, true),
      cwd: this.#dir,
      signal: options.signal,
      label: `${file} ${this.#target.name}`,
      secrets: [this.#target.settings.password],
    });
    return stdout;
  }

  async power(action: PowerAction, options?: CallOptions): Promise<void> {
    if (action === 'cycle' && !this.#program('cycle') && this.#program('off') && this.#program('on')) {
      await this.#run('off', [], options);
      await this.#run('on', [], options);
      return;
    }
    await this.#run(action, [], options);
  }

  async status(options?: CallOptions): Promise<PowerState> {
    const out = await this.#run('status', [], options);
    const word = out.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
    if (word === 'on' || word === 'off' || word === 'unknown') return word;
    throw new PowerError(`${join(this.#dir, 'status')} ${this.#target.name}: printed ${JSON.stringify(out.trim().slice(0, 80))}, expected on, off or unknown`);
  }

  async bootdev(device: BootDevice, persistent: boolean, options?: CallOptions): Promise<void> {
    await this.#run('bootdev', persistent ? [device, 'persistent'] : [device], options);
  }

  async interrogate(options?: CallOptions): Promise<Interrogation> {
    const out = await this.#run('interrogate', [], options);
    const info: Interrogation = {};
    for (const line of out.split('\n')) {
      const m = /^\s*([^:=]+?)\s*[:=]\s*(.*)$/.exec(line);
      if (m) info[m[1]!] = m[2]!.trim();
    }
    return info;
  }

  async console(): Promise<ConsoleSession> {
    const file = this.#program('console');
    if (!file) throw new UnsupportedVerbError('exec', 'console', `no executable ${join(this.#dir, 'console')}`);
    return ptyConsole(file, this.#argv([]), { env: this.#env('console', true), cwd: this.#dir, via: `${file} ${this.#target.name}` });
  }

  describe(verb: PowerVerb, detail?: string, reveal = false): string {
    const extra = verb === 'bootdev' ? (detail ?? 'pxe').split(' ') : [];
    const prog = verb === 'cycle' && !this.#program('cycle') && this.#program('off') && this.#program('on') ? `${join(this.#dir, 'off')} then ${join(this.#dir, 'on')}` : join(this.#dir, verb);
    const secret = this.#target.settings.password;
    const pw = secret !== null ? `POWER_PASSWORD=${reveal ? shellQuote(secret) : MASK} ` : '';
    return `${pw}${prog} ${this.#argv(extra).map(shellQuote).join(' ')}`;
  }
}
