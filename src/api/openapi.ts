/**
 * The OpenAPI 3.1 document of the admin API, generated from the operations' own zod schemas (the
 * ones that validate the requests), so that the document and the server cannot drift apart.
 * Schemas named with `.meta({ id })` become components; every operation documents the error shape.
 */
import { z } from 'zod';
import { errorSchema } from './errors.js';
import type { Operation } from './operation.js';

type Json = Record<string, unknown>;

/** `/nodes/:node` -> `/nodes/{node}` */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

class SchemaSet {
  readonly components: Record<string, Json> = {};

  convert(schema: z.ZodType, io: 'input' | 'output'): Json {
    const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as Json;
    delete json.$schema;
    const defs = json.$defs as Record<string, Json> | undefined;
    delete json.$defs;
    for (const [id, def] of Object.entries(defs ?? {})) this.components[id] ??= rewriteRefs(def) as Json;
    const top = rewriteRefs(json) as Json;
    // A named schema at the top level is referenced too, not inlined.
    const id = (schema.meta() as { id?: string } | undefined)?.id;
    if (id) {
      this.components[id] ??= top;
      return { $ref: `#/components/schemas/${id}` };
    }
    return top;
  }
}

function rewriteRefs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(rewriteRefs);
  if (v && typeof v === 'object') {
    const out: Json = {};
    for (const [k, x] of Object.entries(v)) {
      out[k] = k === '$ref' && typeof x === 'string' && x.startsWith('#/$defs/') ? `#/components/schemas/${x.slice(8)}` : rewriteRefs(x);
    }
    return out;
  }
  return v;
}

function parameters(set: SchemaSet, schema: z.ZodType | undefined, where: 'path' | 'query'): Json[] {
  if (!schema) return [];
  const json = set.convert(schema, 'input');
  const props = (json.properties ?? {}) as Record<string, Json>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => {
    const { description, ...rest } = s;
    return { name, in: where, required: where === 'path' || required.has(name), ...(description ? { description } : {}), schema: rest };
  });
}

const ERRORS: Record<string, string> = {
  '400': 'bad request: malformed JSON, an unknown field, a wrong type (the field is named)',
  '401': 'no token, or an unknown, revoked or expired one',
  '403': "the token's role may not do this",
  '404': 'no such node, group, VNFS, task or token',
  '409': 'conflicts with what exists',
  '413': 'body larger than api.maxBody',
  '415': 'body is not application/json',
  '422': 'a value the registry or the domain refused, with the reason',
  '500': 'the daemon failed to do it: the message says what failed, its log has the details',
  '503': 'not available now: the registry cannot be reached, or this daemon runs no task runner',
};

export function openApiDocument(operations: readonly Operation[], info: { version: string; serverUrl?: string }): Json {
  const set = new SchemaSet();
  const errorRef = set.convert(errorSchema, 'output');
  const paths: Record<string, Record<string, Json>> = {};
  for (const op of operations) {
    const path = openApiPath(op.path);
    const ok: Json = { description: op.response.description };
    if (op.response.contentType) ok.content = { [op.response.contentType]: { schema: op.response.schema ? set.convert(op.response.schema, 'output') : { type: 'string' } } };
    else if (op.response.schema) ok.content = { 'application/json': { schema: set.convert(op.response.schema, 'output') } };
    const responses: Record<string, Json> = { [String(op.response.status)]: ok };
    for (const [status, r] of Object.entries(op.extraResponses ?? {})) {
      responses[status] = { description: r.description, ...(r.schema ? { content: { 'application/json': { schema: set.convert(r.schema, 'output') } } } : {}) };
    }
    const errors = op.access === 'public' ? ['400', '404', '500', '503'] : Object.keys(ERRORS);
    for (const code of errors) responses[code] ??= { description: ERRORS[code]!, content: { 'application/json': { schema: errorRef } } };
    (paths[path] ??= {})[op.method] = {
      operationId: op.id,
      tags: [op.tag],
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      'x-access': op.access,
      security: op.access === 'public' ? [] : [{ bearer: [] }],
      parameters: [...parameters(set, op.params, 'path'), ...parameters(set, op.query, 'query')],
      ...(op.body ? { requestBody: { required: true, content: { 'application/json': { schema: set.convert(op.body, 'input') } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'provisiond admin API',
      version: info.version,
      description:
        'Everything the provisiond CLI can do, for orchestrators, the web UI and scripts. Bearer tokens from `provisiond token create NAME --role viewer|operator|admin`; `x-access` on each operation is the least role it needs.',
    },
    servers: [{ url: info.serverUrl ?? '/api/v1' }],
    paths,
    components: {
      schemas: set.components,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'a token from `provisiond token create`' } },
    },
  };
}
