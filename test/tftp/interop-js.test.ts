/**
 * The whole interop suite (interop.test.ts) again with the native pump off, so the Node transfer
 * path, the fallback when no C compiler is at hand, stays proven against the same real clients.
 */
process.env.PVD_TFTP_ENGINE = 'js';
await import('./interop.test.js');
