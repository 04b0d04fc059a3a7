/**
 * The `qemu` driver: a VM's QMP socket (`power.address`, a unix socket path) for power, and its
 * serial chardev (`power.console`: the unix socket path of a `-chardev socket,server=on`, or
 * `tcp:HOST:PORT` for a `-serial tcp:HOST:PORT,server=on,wait=off` line) for the console. Used by
 * the demo cluster and the end-to-end tests.
 *
 * QEMU has no chassis: "off" is the VM stopped and reset (so `on` boots it from scratch, through its
 * firmware and PXE again); a VM that shut itself down (run with `-no-shutdown`) counts as off too. A
 * QMP socket that is gone means the QEMU process is gone: off, and `on` cannot help.
 */
import { connect } from 'node:net';
import { PowerError, UnsupportedVerbError, type BootDevice, type CallOptions, type ConsoleSession, type Interrogation, type PowerAction, type PowerDriver, type PowerState, type PowerTarget, type PowerVerb } from '../types.js';
import { QmpClient } from './qmp.js';

interface QueryStatus {
  running: boolean;
  status: string;
}

export class QemuDriver implements PowerDriver {
  readonly name = 'qemu';
  readonly #target: PowerTarget;
  readonly #qmp: string;

  constructor(target: PowerTarget) {
    if (!target.settings.address) throw new TypeError(`${target.name}: the qemu driver needs power.address (the VM's QMP unix socket path)`);
    this.#target = target;
    this.#qmp = target.settings.address;
  }

  async #with<T>(options: CallOptions, fn: (q: QmpClient) => Promise<T>): Promise<T> {
    const q = await QmpClient.open(this.#qmp, options.signal);
    try {
      return await fn(q);
    } finally {
      q.close();
    }
  }

  async power(action: PowerAction, options: CallOptions = {}): Promise<void> {
    await this.#with(options, async (q) => {
      const st = await q.execute<QueryStatus>('query-status');
      if (action === 'off' || action === 'cycle') {
        if (st.running) await q.execute('stop');
        // Reset while stopped: the next `cont` starts at the firmware, like pressing the power button.
        await q.execute('system_reset');
      }
      if (action === 'on' || action === 'cycle') {
        const now = action === 'cycle' ? await q.execute<QueryStatus>('query-status') : st;
        if (now.status === 'shutdown' || now.status === 'guest-panicked') await q.execute('system_reset');
        if (!now.running) await q.execute('cont');
      }
      if (action === 'reset') {
        await q.execute('system_reset');
        if (!st.running) await q.execute('cont');
      }
      if (action === 'shutdown') {
        if (!st.running) return;
        await q.execute('system_powerdown');
      }
    });
  }

  async status(options: CallOptions = {}): Promise<PowerState> {
    try {
      const st = await this.#with(options, (q) => q.execute<QueryStatus>('query-status'));
      return st.running ? 'on' : 'off';
    } catch (err) {
      const code = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code;
      if (code === 'ENOENT' || code === 'ECONNREFUSED') return 'off';
      throw err;
    }
  }

  async bootdev(_device: BootDevice, _persistent: boolean): Promise<void> {
    throw new UnsupportedVerbError('qemu', 'bootdev', "a VM's boot order is fixed when it starts (-boot / bootindex)");
  }

  async interrogate(options: CallOptions = {}): Promise<Interrogation> {
    return this.#with(options, async (q) => {
      const info: Interrogation = {};
      const v = await q.execute<{ qemu: { major: number; minor: number; micro: number }; package: string }>('query-version');
      info['qemu.version'] = `${v.qemu.major}.${v.qemu.minor}.${v.qemu.micro}${v.package ? ` ${v.package.trim()}` : ''}`;
      const st = await q.execute<QueryStatus>('query-status');
      info['vm.status'] = st.status;
      const name = await q.execute<{ name?: string }>('query-name').catch(() => ({}) as { name?: string });
      if (name.name) info['vm.name'] = name.name;
      const uuid = await q.execute<{ UUID: string }>('query-uuid').catch(() => null);
      if (uuid) info['vm.uuid'] = uuid.UUID;
      const cpus = await q.execute<unknown[]>('query-cpus-fast').catch(() => null);
      if (cpus) info['vm.cpus'] = String(cpus.length);
      const mem = await q.execute<{ 'base-memory': number }>('query-memory-size-summary').catch(() => null);
      if (mem) info['vm.memory'] = `${Math.round(mem['base-memory'] / 1048576)} MiB`;
      return info;
    });
  }

  async console(): Promise<ConsoleSession> {
    const path = this.#target.settings.console;
    if (!path) throw new UnsupportedVerbError('qemu', 'console', `${this.#target.name} has no power.console (the serial chardev's unix socket path)`);
    // A unix socket path, or tcp:HOST:PORT for a `-serial tcp:...,server=on` line.
    const tcp = /^tcp:(.+):(\d+)$/.exec(path);
    const socket = tcp ? connect({ host: tcp[1]!.replace(/^\[|\]$/g, ''), port: Number(tcp[2]) }) : connect({ path });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', (e: NodeJS.ErrnoException) => reject(new PowerError(`qemu serial ${path}: ${e.code ?? e.message}`, { cause: e })));
    });
    return {
      stream: socket,
      via: `qemu serial ${path}`,
      async close() {
        socket.end();
        socket.destroy();
      },
    };
  }

  describe(verb: PowerVerb, detail?: string): string {
    const cmds: Record<PowerVerb, string> = {
      on: 'query-status; [system_reset if shut down]; cont',
      off: 'stop; system_reset',
      shutdown: 'system_powerdown',
      reset: 'system_reset',
      cycle: 'stop; system_reset; cont',
      status: 'query-status',
      bootdev: `(cannot set the boot device${detail ? ` to ${detail}` : ''})`,
      interrogate: 'query-version; query-status; query-name; query-uuid',
      console: `connect ${this.#target.settings.console ?? '(no power.console)'}`,
    };
    return `qmp ${this.#qmp}: ${cmds[verb]}`;
  }
}
