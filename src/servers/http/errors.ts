/**
 * The one error class a request handler throws to answer with a 4xx/5xx and a reason. The HTTP
 * server's central error handler turns it into a one-line `text/plain` response; anything else
 * thrown becomes a 500 whose details go to the log only.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(message, options);
    this.name = 'HttpError';
    this.headers = options?.headers ?? {};
  }
  readonly headers: Record<string, string>;
}
