/**
 * Error classes that callers branch on. Messages are lowercase and context-first
 * (`reading vnfs capsule demo.vnfs: unexpected end of archive`), with `cause` attached.
 */

/** Base class of every error provisiond raises on purpose. */
export class ProvisiondError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** What the user typed is wrong (bad argument, unknown node pattern...): one line, non-zero exit. */
export class UsageError extends ProvisiondError {}

/** A configuration file is invalid. `file`, `key` and `reason` are kept for the message. */
export class ConfigError extends ProvisiondError {
  constructor(
    readonly file: string,
    readonly key: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${key ? `${key}: ` : ''}${reason}`, options);
  }
}

/** A node name, group or hardware address is unknown to the registry. */
export class NodeNotFoundError extends ProvisiondError {}

/** Returns the message of anything thrown, for one-line reports. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
