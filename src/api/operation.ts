/**
 * An API operation: its method and path, who may call it, the zod schemas of its parameters, query,
 * body and answer, and its handler. The same definition validates requests (app.ts), documents the
 * API (openapi.ts) and drives the authorization tests: one source, so the document cannot drift.
 */
import type { Request, Response } from 'express';
import type { z } from 'zod';
import type { Role } from '../registry/types.js';
import type { ApiContext } from './context.js';
import type { Session } from './sessions.js';

/** Who may call: a role (and every role above it), or `public` (no token: health, the document itself). */
export type Access = Role | 'public';

/** The caller, from its token. */
export interface Caller {
  name: string;
  role: Role;
  /** The web UI's session, when the request came with its cookie rather than a Bearer token. */
  session?: Session;
}

export interface ApiRequest<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  /** Null only on public operations. */
  caller: Caller | null;
  api: ApiContext;
  req: Request;
  res: Response;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/** A handler's answer when it is not the default status with a JSON body. */
export class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}

/** Returned by a handler that wrote the response itself (a stream, a page). */
export const HANDLED: unique symbol = Symbol('handled');

type Schema = z.ZodType;
type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface Operation<P extends Schema | undefined = Schema | undefined, Q extends Schema | undefined = Schema | undefined, B extends Schema | undefined = Schema | undefined> {
  /** `nodes.list`, `nodes.patch`...: the operationId, and the audit log's action. */
  id: string;
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Under /api/v1, with express parameters: `/nodes/:node`. */
  path: string;
  tag: string;
  summary: string;
  description?: string;
  access: Access;
  params?: P;
  query?: Q;
  body?: B;
  /** The success status and its body's schema; `contentType` for non-JSON answers (event stream, text). */
  response: { status: number; schema?: Schema; description: string; contentType?: string };
  /** Other answers worth documenting besides the error ones every operation has. */
  extraResponses?: Record<number, { schema?: Schema; description: string }>;
  /** For the audit log: the resource acted on. */
  target?: (r: { params: Out<P>; body: Out<B> }) => string | null;
  handler(r: ApiRequest<Out<P>, Out<Q>, Out<B>>): Promise<unknown>;
}

/** Defines an operation with its types inferred from its schemas. */
export function defineOperation<P extends Schema | undefined = undefined, Q extends Schema | undefined = undefined, B extends Schema | undefined = undefined>(
  op: Operation<P, Q, B>,
): Operation {
  return op as unknown as Operation;
}

const RANK: Record<Access, number> = { public: 0, viewer: 1, operator: 2, admin: 3 };

/** Whether `role` may call an operation open to `access`. */
export function allows(role: Role | null, access: Access): boolean {
  return RANK[role ?? 'public'] >= RANK[access];
}
