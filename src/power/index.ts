/**
 * Choosing a node's power driver from its `power.driver` setting.
 */
import { UsageError } from '../util/errors.js';
import { ExecDriver } from './exec/driver.js';
import { IpmiDriver, type IpmiOptions } from './ipmi/driver.js';
import { QemuDriver } from './qemu/driver.js';
import { RedfishDriver } from './redfish/driver.js';
import type { PowerDriver, PowerTarget } from './types.js';

export const DRIVERS = ['ipmi', 'redfish', 'exec', 'qemu'] as const;

export interface DriverOptions {
  ipmi?: IpmiOptions;
}

/** The driver for a node; a UsageError (naming the node) for an unknown driver or missing settings. */
export function createDriver(target: PowerTarget, options: DriverOptions = {}): PowerDriver {
  try {
    switch (target.settings.driver) {
      case 'ipmi':
        return new IpmiDriver(target, options.ipmi);
      case 'redfish':
        return new RedfishDriver(target);
      case 'exec':
        return new ExecDriver(target);
      case 'qemu':
        return new QemuDriver(target);
      default:
        throw new UsageError(`${target.name}: unknown power.driver ${JSON.stringify(target.settings.driver)} (use ${DRIVERS.join(', ')})`);
    }
  } catch (err) {
    if (err instanceof TypeError) throw new UsageError(err.message, { cause: err });
    throw err;
  }
}

export * from './types.js';
