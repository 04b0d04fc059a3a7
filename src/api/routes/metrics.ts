/**
 * GET /metrics: the daemon's Prometheus metrics in the text exposition format, for a scraper with a
 * viewer token (`authorization: bearer_credentials` / `credentials_file` in its scrape config). Also
 * served at the API listener's root path `/metrics` (Prometheus's default metrics_path), and alone
 * on the listener of config `metrics` when enabled.
 */
import { ApiError } from '../errors.js';
import { defineOperation, HANDLED } from '../operation.js';

export const metricsOperations = [
  defineOperation({
    id: 'metrics.get',
    method: 'get',
    path: '/metrics',
    tag: 'meta',
    summary: 'The Prometheus metrics (text exposition format 0.0.4), also at /metrics; needs a viewer token',
    description: 'Every metric and its meaning: docs/metrics.md. Nodes by state and verdict are counted at most every 5 s.',
    access: 'viewer',
    response: { status: 200, description: 'the metrics', contentType: 'text/plain' },
    handler: async ({ api, res }) => {
      if (!api.metrics) throw new ApiError(404, 'not_found', 'this daemon collects no metrics');
      const { contentType, text } = await api.metrics();
      res.status(200).setHeader('Content-Type', contentType);
      res.setHeader('Cache-Control', 'no-store');
      res.end(text);
      return HANDLED;
    },
  }),
];
