/**
 * The admin API's one error shape, `{ "error": { "code", "message", "field"? } }`, and the mapping
 * of the errors the domain raises (registry, usage, not found) to HTTP statuses. Handlers throw;
 * the central handler in app.ts answers.
 */
import { z } from 'zod';
import { ImportEntryError, RegistryConflictError, RegistryUnavailableError, RegistryValueError } from '../registry/errors.js';
import { NamePatternExhaustedError } from '../registry/types.js';
import { ConfigError, errorMessage, NodeNotFoundError, ProvisiondError, UsageError } from '../util/errors.js';

export const errorSchema = z
  .strictObject({
    error: z.strictObject({
      code: z.string().meta({ description: 'machine-readable: unauthorized, forbidden, not_found, conflict, invalid, malformed_json, body_too_large, ...' }),
      message: z.string().meta({ description: 'one line for a human, context first' }),
      field: z.string().optional().meta({ description: 'the request field at fault (`body.vnfs`, `query.limit`, `params.node`)' }),
    }),
  })
  .meta({ id: 'Error' });

export type ApiErrorBody = z.infer<typeof errorSchema>;

/** An error answered as-is: status, code, message and (optionally) the field at fault. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The status and body for anything a handler threw. Unexpected errors are 500 with their message. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const msg = errorMessage(err);
  if (err instanceof NodeNotFoundError) return new ApiError(404, 'not_found', msg);
  if (err instanceof RegistryConflictError) return new ApiError(409, 'conflict', msg);
  if (err instanceof NamePatternExhaustedError) return new ApiError(409, 'exhausted', msg);
  if (err instanceof ImportEntryError) return new ApiError(422, 'invalid', msg, `body[${err.index}]`);
  if (err instanceof RegistryValueError || err instanceof UsageError || err instanceof ConfigError) return new ApiError(422, 'invalid', msg);
  if (err instanceof RegistryUnavailableError) return new ApiError(503, 'unavailable', msg);
  if (err instanceof ProvisiondError) return new ApiError(422, 'invalid', msg);
  return new ApiError(500, 'internal', msg);
}

export function errorBody(e: ApiError): ApiErrorBody {
  return { error: { code: e.code, message: e.message, ...(e.field !== undefined ? { field: e.field } : {}) } };
}

/** The first issue of a failed validation as an ApiError naming the field (`body.vnfs`, `query.limit`). */
export function validationError(where: 'body' | 'query' | 'params', issues: readonly z.core.$ZodIssue[]): ApiError {
  const issue = issues[0]!;
  let path = issue.path.map(String);
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    path = [...path, issue.keys[0]!];
    message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
  }
  const field = [where, ...path].join('.');
  return new ApiError(where === 'params' ? 404 : 400, where === 'params' ? 'not_found' : 'invalid', `${field}: ${message}`, field);
}
