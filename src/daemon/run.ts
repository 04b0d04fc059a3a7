/**
 * The composition root: config -> logger -> registry -> policy -> servers.
 * Until the HTTP service exists this only loads the config and reports what it would serve.
 */
import type { Config } from '../config/schema.js';
import { createLogger } from '../log/logger.js';

export interface RunOptions {
  config: Config;
  logFormat?: 'auto' | 'pretty' | 'json';
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export async function runDaemon({ config, logFormat, logLevel }: RunOptions): Promise<void> {
  const log = createLogger({ level: logLevel ?? config.log.level, format: logFormat ?? config.log.format });
  log.info({ config: config.source, statedir: config.statedir }, 'configuration loaded');
  log.warn({}, 'no server is implemented yet: nothing is being served');
}
