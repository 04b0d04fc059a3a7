/**
 * The HTTP side of the redfish driver: JSON requests against one BMC with its TLS settings, basic or
 * session authentication, and errors that carry Redfish's own message (`@Message.ExtendedInfo`).
 */
import http from 'node:http';
import https from 'node:https';
import { PowerError } from '../types.js';
import { maskSecrets } from '../settings.js';

export interface RedfishResponse<T> {
  status: number;
  body: T;
  etag: string | null;
}

export interface RedfishHttpOptions {
  ca?: Buffer;
  insecure?: boolean;
  signal?: AbortSignal;
  secrets?: ReadonlyArray<string | null>;
}

export class RedfishHttp {
  readonly #base: URL;
  readonly #opts: RedfishHttpOptions;
  #authHeader: Record<string, string> = {};
  #session: string | null = null;

  constructor(base: URL, opts: RedfishHttpOptions) {
    this.#base = base;
    this.#opts = opts;
  }

  basic(user: string, password: string): void {
    this.#authHeader = { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
  }

  /** Creates a Redfish session; its token authenticates every later request. */
  async login(user: string, password: string): Promise<void> {
    const r = await this.#request('POST', '/redfish/v1/SessionService/Sessions', { UserName: user, Password: password });
    const token = r.headers['x-auth-token'];
    if (r.status >= 400 || typeof token !== 'string') {
      throw new PowerError(`redfish ${this.#base.origin}: login as ${user || '(no user)'} refused (${r.status}${describe(r.text)})`);
    }
    this.#authHeader = { 'X-Auth-Token': token };
    const loc = r.headers.location;
    this.#session = typeof loc === 'string' ? new URL(loc, this.#base).pathname : null;
  }

  /** Ends the session, if any; a failure here is not the caller's problem. */
  async logout(): Promise<void> {
    if (!this.#session) return;
    const path = this.#session;
    this.#session = null;
    await this.#request('DELETE', path, undefined, {}, true).catch(() => {});
  }

  /** A request whose answer must be 2xx; the body is parsed as JSON when there is one. */
  async json<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<RedfishResponse<T>> {
    const r = await this.#request(method, path, body, headers);
    if (r.status >= 400) throw new PowerError(`redfish ${method} ${this.#base.origin}${path}: ${r.status}${describe(r.text)}`);
    let parsed: unknown = {};
    if (r.text.trim()) {
      try {
        parsed = JSON.parse(r.text);
      } catch {
        throw new PowerError(`redfish ${method} ${this.#base.origin}${path}: the answer is not JSON`);
      }
    }
    const etag = r.headers.etag;
    return { status: r.status, body: parsed as T, etag: typeof etag === 'string' ? etag : null };
  }

  #request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, noSignal = false): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
    const url = new URL(path, this.#base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const isHttps = url.protocol === 'https:';
    const options: https.RequestOptions = {
      method,
      headers: {
        Accept: 'application/json',
        'OData-Version': '4.0',
        ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) } : {}),
        ...this.#authHeader,
        ...headers,
      },
      signal: noSignal ? undefined : this.#opts.signal,
      ...(isHttps ? { ca: this.#opts.ca, rejectUnauthorized: !this.#opts.insecure } : {}),
    };
    return new Promise((resolve, reject) => {
      const req = (isHttps ? https : http).request(url, options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= 4 << 20) chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        const why = e.name === 'AbortError' ? (this.#opts.signal?.reason?.name === 'TimeoutError' ? 'timed out' : 'cancelled') : (e.code ?? e.message);
        reject(new PowerError(maskSecrets(`redfish ${method} ${url.origin}${url.pathname}: ${why}`, this.#opts.secrets ?? []), { cause: e }));
      });
      req.end(payload);
    });
  }
}

/** Redfish's error body, `{error: {message, @Message.ExtendedInfo: [{Message}]}}`, in a few words. */
function describe(text: string): string {
  try {
    const e = (JSON.parse(text) as { error?: { message?: string; '@Message.ExtendedInfo'?: Array<{ Message?: string }> } }).error;
    const msg = e?.['@Message.ExtendedInfo']?.[0]?.Message ?? e?.message;
    return msg ? `: ${msg}` : '';
  } catch {
    return '';
  }
}
