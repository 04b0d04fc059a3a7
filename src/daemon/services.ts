/**
 * The services the daemon starts, in order. Adding a server = one import and one entry here.
 */
import { startApi } from './api-service.js';
import { startDhcp } from './dhcp.js';
import { startMetrics } from './metrics-service.js';
import { startHttp } from './http-service.js';
import { startPerceus } from './perceus-service.js';
import type { ServiceFactory } from './service.js';
import { startTftp } from './tftp.js';

export const serviceFactories: Array<{ name: string; start: ServiceFactory }> = [
  { name: 'http', start: startHttp },
  { name: 'tftp', start: startTftp },
  { name: 'dhcp', start: startDhcp },
  { name: 'perceus', start: startPerceus },
  { name: 'api', start: startApi },
  { name: 'metrics', start: startMetrics },
];
