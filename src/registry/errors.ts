/**
 * Errors of the registry that callers branch on. All are ProvisiondErrors, so the CLI prints them as
 * one line with a non-zero exit.
 */
import { ProvisiondError } from '../util/errors.js';
import type { Lease } from './types.js';

/**
 * The database cannot be used: corrupted, locked by another process, unreadable, too new; or out of
 * reach (`unreachable`: a network database down or cut off, which comes back by itself).
 */
export class RegistryUnavailableError extends ProvisiondError {
  readonly unreachable: boolean;

  constructor(message: string, options?: { cause?: unknown; unreachable?: boolean }) {
    super(message, options);
    this.unreachable = options?.unreachable ?? false;
  }
}

/** A name, hardware address or fixed address is already taken by another node. */
export class RegistryConflictError extends ProvisiondError {}

/** A value given for a node or group field is invalid (bad address, bad boot mode...). */
export class RegistryValueError extends ProvisiondError {}

/** One entry of an import is wrong; `index` is its position in the list (0-based), for line numbers. */
export class ImportEntryError extends ProvisiondError {
  constructor(
    readonly index: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A lease claim lost: another machine holds the address (a live lease, possibly made by another
 * server on the same database). Nothing was written; the DHCP engine NAKs its client, which
 * starts over and is offered another address.
 */
export class LeaseConflictError extends RegistryConflictError {
  constructor(
    readonly address: string,
    readonly holder: string | null,
    message: string,
    options?: { cause?: unknown; lease?: Lease | null },
  ) {
    super(message, { cause: options?.cause });
    this.lease = options?.lease ?? null;
  }

  /** The holder's lease, when the store read it (a DHCP server puts it in its table). */
  readonly lease: Lease | null;
  /** Marks a lost claim for the DHCP server (DhcpLeaseStore.putLease), which knows no registry errors. */
  readonly claimLost = true;
}

/**
 * A task write refused: another runner claimed the task meanwhile (its server's heartbeat had
 * stopped, as after a long pause or a cut from the database). Nothing was written; the runner that
 * lost it stops running it.
 */
export class TaskClaimLostError extends ProvisiondError {
  constructor(
    readonly taskId: string,
    readonly runner: string | null,
    message: string,
  ) {
    super(message);
  }
}
