/**
 * A virtual cluster node: QEMU under TCG, PXE-booting from its NIC on a tap of the test network,
 * serial console to a log file (and kept in memory for assertions). Firmware variants:
 *   bios       SeaBIOS -> the NIC ROM's iPXE (Debian ipxe-qemu)
 *   uefi       OVMF -> the NIC ROM's iPXE directly (arch 7, user class iPXE)
 *   uefi-pxe   OVMF's own PXE (arch 7) -> TFTP snponly.efi -> iPXE   (NIC ROM removed: romfile=)
 *   uefi-http  OVMF's UEFI HTTP boot (arch 16, HTTPClient)             (PXE switched off by fw_cfg)
 */
import { copyFileSync, createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { TestNetwork } from './netns.js';
import { killQuietly } from '../../lib/cleanup.js';

export type Firmware = 'bios' | 'uefi' | 'uefi-pxe' | 'uefi-http';

// Debian's 2 MiB OVMF build (the 4 MiB one spends about a second more of an emulated CPU reaching
// PXE); both have PXE and HTTP boot.
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS.fd';

export interface VmOptions {
  name: string;
  /** Fixed MAC, `52:54:00:..`. */
  mac: string;
  firmware: Firmware;
  net: TestNetwork;
  /** Folder for the serial log, the UEFI variable store and the QMP socket. */
  dir: string;
  /** MiB of guest memory (the VNFS is unpacked into a tmpfs). */
  memory?: number;
  /**
   * The NIC model: QEMU's virtio (default) or `e1000e`, an Intel 82574L, a physical NIC's driver
   * (as compute nodes have; the cloud kernel has no driver for it).
   */
  nic?: 'virtio' | 'e1000e';
  /** More QEMU arguments (a bench's experiments: `-cpu`, `-accel` options). */
  extraArgs?: string[];
}

/** One VM. `start()` is power-on; times are measured from it. */
export class Vm {
  readonly name: string;
  readonly mac: string;
  readonly firmware: Firmware;
  readonly serialLog: string;
  readonly qmpSocket: string;
  /** Epoch ms of power-on. */
  poweredOnAt = 0;
  private child: ChildProcess | null = null;
  private text = '';
  private log: WriteStream | null = null;
  /** Offset in `text` where each serial chunk began, with its arrival time. */
  private chunks: Array<{ offset: number; at: number }> = [];
  private keysSent = 0;
  private waiters: Array<() => void> = [];
  private exited: number | null | undefined;

  constructor(private readonly opts: VmOptions) {
    this.name = opts.name;
    this.mac = opts.mac.toLowerCase();
    this.firmware = opts.firmware;
    this.serialLog = join(opts.dir, `${opts.name}.serial.log`);
    this.qmpSocket = join(opts.dir, `${opts.name}.qmp`);
  }

  /** Everything the serial console printed so far, escape sequences and CRs removed. */
  get serial(): string {
    return this.text;
  }

  get running(): boolean {
    return this.child !== null && this.exited === undefined;
  }

  /** Powers the VM on (creates its tap and starts QEMU inside the namespace). */
  async start(): Promise<void> {
    const tap = await this.opts.net.addTap();
    const args = qemuArgs(this.opts, tap, this.qmpSocket);
    if (this.firmware !== 'bios') copyFileSync(OVMF_VARS, join(this.opts.dir, `${this.name}.vars.fd`));
    this.log = createWriteStream(this.serialLog);
    this.poweredOnAt = Date.now();
    const child = this.opts.net.spawn('qemu-system-x86_64', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (chunk: Buffer) => this.onSerial(chunk));
    child.stderr!.on('data', (chunk: Buffer) => this.onSerial(Buffer.from(`\n[qemu] ${chunk.toString()}`)));
    child.stdin!.on('error', () => {});
    child.on('exit', (code) => {
      this.exited = code;
      this.wake();
    });
  }

  /** Waits until the serial console shows `re`; returns seconds since power-on. */
  async waitForSerial(re: RegExp, timeoutMs: number): Promise<number> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      if (re.test(this.text)) return (Date.now() - this.poweredOnAt) / 1000;
      if (!this.running) throw new Error(`${this.name}: qemu exited (${this.exited}) before the console showed ${re}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`${this.name}: console did not show ${re} within ${timeoutMs / 1000} s (see ${this.serialLog})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Epoch ms at which the console first showed `re` (when the chunk completing it arrived), or null. */
  seenAt(re: RegExp): number | null {
    const m = re.exec(this.text);
    if (!m) return null;
    const end = m.index + m[0].length - 1;
    let at = this.poweredOnAt;
    for (const c of this.chunks) {
      if (c.offset > end) break;
      at = c.at;
    }
    return at;
  }

  /** Types on the serial console. */
  sendKeys(keys: string): void {
    this.child?.stdin?.write(keys);
  }

  /** Powers the VM off (SIGKILL: a pulled plug, as a test teardown wants). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || this.exited !== undefined) return this.closeLog();
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    killQuietly(child.pid, 'SIGKILL');
    await gone;
    await this.closeLog();
  }

  private async closeLog(): Promise<void> {
    const log = this.log;
    this.log = null;
    if (log) await new Promise<void>((resolve) => log.end(resolve));
  }

  private onSerial(chunk: Buffer): void {
    this.log?.write(chunk);
    this.chunks.push({ offset: this.text.length, at: Date.now() });
    // eslint-disable-next-line no-control-regex
    this.text += chunk.toString('latin1').replace(/\x1b\[[0-9;=?]*[A-Za-z]/g, '').replace(/\r/g, '');
    // Debian's iPXE waits 2 s at "Press Ctrl-B"; any other key ends the wait at once.
    const prompts = this.text.match(/Press Ctrl-B/g)?.length ?? 0;
    while (this.keysSent < prompts) {
      this.keysSent++;
      this.sendKeys(' ');
    }
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

function qemuArgs(opts: VmOptions, tap: string, qmp: string): string[] {
  const nic = [opts.nic === 'e1000e' ? 'e1000e' : 'virtio-net-pci', `netdev=n0`, `mac=${opts.mac}`];
  const args = [
    '-accel', 'tcg',
    '-nographic', // SeaBIOS and the option ROMs print on serial only with -nographic
    // A headless diskless compute node, serial console only (as a BMC's serial-over-LAN): no VGA
    // card (drawing the firmware's and the kernel's text on an emulated screen costs seconds under
    // TCG: OVMF reached PXE in ~8 s instead of ~13 s) and none of QEMU's default floppy, CD-ROM and
    // parallel port for the firmware to probe. The serial port and the NIC are given below.
    '-vga', 'none',
    '-nodefaults',
    '-monitor', 'none',
    '-chardev', 'stdio,id=ser0,signal=off',
    '-serial', 'chardev:ser0',
    '-qmp', `unix:${qmp},server=on,wait=off`,
    '-m', String(opts.memory ?? 512),
    '-smp', '1',
    '-name', opts.name,
    '-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`,
  ];
  if (opts.firmware === 'bios') {
    args.push('-boot', 'n');
  } else {
    // Under OVMF `-boot n` has no effect: the NIC gets the first boot index instead.
    nic.push('bootindex=1');
    args.push(
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${join(opts.dir, `${opts.name}.vars.fd`)}`,
    );
    // Without the NIC's ROM, OVMF's own network stack (SNP + PXE / HTTP boot) does the booting.
    if (opts.firmware !== 'uefi') nic.push('romfile=');
    if (opts.firmware === 'uefi-http') {
      args.push('-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=n', '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=n');
    }
  }
  args.push('-device', nic.join(','));
  if (opts.extraArgs) args.push(...opts.extraArgs);
  return args;
}
