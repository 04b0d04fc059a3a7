/**
 * The out-of-band control of a node: one interface (`PowerDriver`), implemented by ipmi/ (ipmitool
 * over lanplus), redfish/ (HTTP JSON), exec/ (a folder of site executables, the OpenNebula model) and
 * qemu/ (a VM's QMP socket and serial chardev). One contract suite (test/power/contract.ts) runs
 * against every driver.
 *
 * The verbs follow what Apache VCL's provisioning modules, Airship Drydock's OOB drivers and
 * OpenNebula's provision drivers agree on.
 */
import type { Duplex } from 'node:stream';
import { ProvisiondError } from '../util/errors.js';

/** What the BMC says about the chassis power. */
export type PowerState = 'on' | 'off' | 'unknown';
/** `off` is a hard power-off, `shutdown` an orderly one (ACPI), `reset` a hard reset, `cycle` off then on. */
export type PowerAction = 'on' | 'off' | 'shutdown' | 'reset' | 'cycle';
export const POWER_ACTIONS: readonly PowerAction[] = ['on', 'off', 'shutdown', 'reset', 'cycle'];
export type BootDevice = 'pxe' | 'disk';
/** Every verb a driver may implement (for `UnsupportedVerbError` and the exec driver's file names). */
export type PowerVerb = PowerAction | 'status' | 'bootdev' | 'interrogate' | 'console';

/** The driver settings of one node, from its `power.*` attributes (node over group). */
export interface PowerSettings {
  driver: string;
  /** host[:port] (ipmi), a URL (redfish), the QMP socket path (qemu). */
  address: string | null;
  user: string | null;
  /** A secret: never logged nor printed; see `maskSecrets`. */
  password: string | null;
  /** The exec driver's folder of executables. */
  dir: string | null;
  /** Extra arguments, split like a shell would on whitespace (quotes honoured). */
  args: string[];
  /** The qemu driver's serial: the unix socket path of the serial chardev. */
  console: string | null;
  /** Every `power.*` attribute without the prefix (driver-specific keys: `ca`, `insecure`, `auth`, `system`...). */
  raw: Record<string, string>;
}

/** The node a driver acts on. */
export interface PowerTarget {
  name: string;
  /** Canonical hardware address. */
  nodeid: string;
  settings: PowerSettings;
}

/** Options of one call: cancelled by the fan-out's timeout. */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Whatever the BMC tells: model, serial, firmware, sensors, event log; flat `key: value` pairs. */
export type Interrogation = Record<string, string>;

/**
 * An open console: a duplex byte stream (what the node prints comes out, keystrokes go in), so the
 * terminal CLI and, later, a WebSocket can carry it alike. `close()` ends the session (SOL
 * deactivated, socket closed, program killed).
 */
export interface ConsoleSession {
  stream: Duplex;
  /** What the console is attached through, for the banner (`ipmitool sol activate`, `qemu serial /run/n1.sock`). */
  via: string;
  /**
   * Sets the terminal size the far end sees (a pty's TIOCSWINSZ: the program gets SIGWINCH, `stty
   * size` answers it). Absent for a console with no window size (a serial line: QEMU's chardev).
   */
  resize?(cols: number, rows: number): void;
  close(): Promise<void>;
}

export interface PowerDriver {
  /** The driver's name, as in `power.driver`. */
  readonly name: string;
  power(action: PowerAction, options?: CallOptions): Promise<void>;
  status(options?: CallOptions): Promise<PowerState>;
  bootdev(device: BootDevice, persistent: boolean, options?: CallOptions): Promise<void>;
  interrogate(options?: CallOptions): Promise<Interrogation>;
  console(): Promise<ConsoleSession>;
  /**
   * What the verb would do, for `--dry-run`: the command line or request, with secrets shown as
   * `****` unless `reveal` (the admin asked: `--show-passwords`). Pure: runs nothing.
   */
  describe(verb: PowerVerb, detail?: string, reveal?: boolean): string;
}

/** A driver was asked for a verb it cannot do (`qemu driver cannot set the boot device`). */
export class UnsupportedVerbError extends ProvisiondError {
  constructor(driver: string, verb: PowerVerb, why?: string) {
    super(`${driver} driver cannot ${verb}${why ? `: ${why}` : ''}`);
  }
}

/** The BMC or program answered with a failure; retrying may help. */
export class PowerError extends ProvisiondError {}

/** What the password looks like wherever it would be printed. */
export const MASK = '****';
