/**
 * The web UI's static files under /ui/: the pages of `ui/` in the package, and xterm.js from its npm
 * package (no CDN: the cluster network has no internet). Nothing here is private to the UI: the
 * pages read and change everything through /api/v1 like any other client. A strict CSP keeps the
 * browser from loading anything from anywhere else.
 */
import { dirname } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import express from 'express';

export const UI_DIR = fileURLToPath(new URL('../../ui/', import.meta.url));
const require = createRequire(import.meta.url);
const XTERM_DIR = dirname(dirname(require.resolve('@xterm/xterm')));
const FIT_DIR = dirname(dirname(require.resolve('@xterm/addon-fit')));

const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** Mounts /ui/ (and / as a redirect to it) on the API's application. */
export function mountUi(app: express.Express): void {
  const headers = (res: express.Response) => {
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
  };
  const opts = { fallthrough: false, index: 'index.html', maxAge: 0, setHeaders: headers } as const;
  app.use((req, res, next) => (req.method === 'GET' && (req.path === '/' || req.originalUrl === '/ui') ? res.redirect(302, '/ui/') : next()));
  app.use('/ui/vendor/xterm', express.static(XTERM_DIR, { ...opts, index: false }));
  app.use('/ui/vendor/addon-fit', express.static(FIT_DIR, { ...opts, index: false }));
  app.use('/ui', express.static(UI_DIR, opts));
}
