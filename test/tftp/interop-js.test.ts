/**
 * The whole interop suite (interop.test.ts) again with the native pump off, so the Node transfer
 * path (config `tftp.engine: js`, and small or generated files always) stays proven against the
 * same real clients.
 */
process.env.PVD_TFTP_ENGINE = 'js';
await import('./interop.test.js');
