/**
 * The services the daemon starts, in order. Adding a server = one import and one entry here.
 */
import { startDhcp } from './dhcp.js';
import type { ServiceFactory } from './service.js';

export const serviceFactories: Array<{ name: string; start: ServiceFactory }> = [
  { name: 'dhcp', start: startDhcp },
];
