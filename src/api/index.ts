/**
 * The admin API: every operation, the OpenAPI document made from them, the reference page, and the
 * express application serving it all. The daemon listens (src/daemon/api-service.ts).
 */
import type express from 'express';
import { z } from 'zod';
import { createApiApp, API_BASE } from './app.js';
import type { ApiContext } from './context.js';
import { DOCS_PAGE } from './docs-page.js';
import { defineOperation, type Operation } from './operation.js';
import { openApiDocument } from './openapi.js';
import { consoleOperations } from './routes/console.js';
import { eventOperations } from './routes/events.js';
import { metaOperations } from './routes/meta.js';
import { metricsOperations } from './routes/metrics.js';
import { resourceOperations } from './routes/resources.js';
import { sessionOperations } from './routes/session.js';
import { taskOperations } from './routes/tasks.js';
import { mountUi } from './ui.js';
import { tokenOperations } from './routes/tokens.js';

export { API_BASE } from './app.js';
export { EventHub } from './events.js';
export type { ApiContext, TaskService } from './context.js';

export const API_VERSION = '1.0.0';

/** The listener of config `metrics`: GET /metrics (and /api/v1/metrics) only, with the same token check. */
export function createMetricsApp(api: ApiContext): express.Express {
  return createApiApp(api, metricsOperations, { maxBody: 1024 }, undefined, metricsAlias);
}

/** Every operation of the API, the document's own included. */
export function apiOperations(): Operation[] {
  const ops: Operation[] = [...metaOperations, ...metricsOperations, ...sessionOperations, ...tokenOperations, ...resourceOperations, ...taskOperations, ...eventOperations, ...consoleOperations];
  let doc: Record<string, unknown> | null = null;
  ops.push(
    defineOperation({
      id: 'openapi.get',
      method: 'get',
      path: '/openapi.json',
      tag: 'meta',
      summary: 'This API as an OpenAPI 3.1 document (no token needed)',
      access: 'public',
      response: { status: 200, description: 'the document', schema: z.record(z.string(), z.unknown()) },
      handler: async () => (doc ??= openApiDocument(ops, { version: API_VERSION, serverUrl: API_BASE })),
    }),
  );
  return ops;
}

/** `/metrics` at the root, where Prometheus looks by default, is /api/v1/metrics (same token check). */
function metricsAlias(app: express.Express): void {
  app.use((req, _res, next) => {
    if (req.path === '/metrics') req.url = `${API_BASE}${req.url}`;
    next();
  });
}

/** The API's express application: /api/v1/..., /metrics, the reference page at /api/docs and the web UI at /ui/. */
export function createApi(api: ApiContext, o: { maxBody: number }): express.Express {
  return createApiApp(api, apiOperations(), o, (app) => {
    app.get(['/api/docs', '/api/docs/'], (_req, res) => {
      res.setHeader('Content-Security-Policy', "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'");
      res.type('html').send(DOCS_PAGE);
    });
    mountUi(app);
  }, metricsAlias);
}
