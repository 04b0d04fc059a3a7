/**
 * The logger every part of provisiond receives. It is passed down, never imported as a global.
 * Fields first, message second (pino's convention): `log.info({ node, script }, 'script finished')`.
 */
import pino from 'pino';

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(fields: LogFields, msg: string): void;
  info(fields: LogFields, msg: string): void;
  warn(fields: LogFields, msg: string): void;
  error(fields: LogFields, msg: string): void;
  /** A logger whose lines all carry `fields` (e.g. `{ server: 'tftp' }`). */
  child(fields: LogFields): Logger;
}

export type LogFormat = 'auto' | 'pretty' | 'json';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export interface LoggerOptions {
  level?: LogLevel;
  /** `auto`: readable lines on a terminal, JSON otherwise. */
  format?: LogFormat;
  /** Where JSON lines go (default stderr). */
  destination?: NodeJS.WritableStream;
}

/** The default logger: pino, JSON or pretty. */
export function createLogger({ level = 'info', format = 'auto', destination }: LoggerOptions = {}): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && !destination && process.stderr.isTTY === true);
  if (pretty) {
    return pino(
      { level },
      pino.transport({ target: 'pino-pretty', options: { destination: 2, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } }),
    ) as unknown as Logger;
  }
  return pino({ level, base: undefined }, (destination ?? pino.destination({ dest: 2, sync: false })) as pino.DestinationStream) as unknown as Logger;
}

/** A logger that drops everything (tests, and commands that print their own output). */
export function silentLogger(): Logger {
  const l: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => l };
  return l;
}

/** A logger that keeps lines in memory, for tests that assert what was logged. */
export function memoryLogger(): Logger & { lines: Array<{ level: string; msg: string } & LogFields> } {
  const lines: Array<{ level: string; msg: string } & LogFields> = [];
  const make = (base: LogFields): Logger => ({
    debug: (f, msg) => lines.push({ ...base, ...f, level: 'debug', msg }),
    info: (f, msg) => lines.push({ ...base, ...f, level: 'info', msg }),
    warn: (f, msg) => lines.push({ ...base, ...f, level: 'warn', msg }),
    error: (f, msg) => lines.push({ ...base, ...f, level: 'error', msg }),
    child: (f) => make({ ...base, ...f }),
  });
  return Object.assign(make({}), { lines });
}
