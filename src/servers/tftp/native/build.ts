/**
 * The native TFTP pump (pump.c), compiled on first use (util/native-build.ts) without blocking the
 * event loop. Without a compiler (or the source) this resolves null and transfers stay in Node.
 */
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../../log/logger.js';
import { NativeBuildError, nativeBinary } from '../../../util/native-build.js';

const SOURCE = fileURLToPath(new URL('./pump.c', import.meta.url));

/** Path of the native pump, building it if needed; null when it cannot be had. */
export async function nativePump(logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  try {
    const bin = await nativeBinary(SOURCE, 'provisiond-tftp-pump', env);
    logger.debug({ bin }, 'tftp native pump ready');
    return bin;
  } catch (err) {
    const why = (err as Error).message;
    if (err instanceof NativeBuildError && err.notPrivate) logger.warn({ err: why }, `tftp native pump: ${why}; transfers stay in node`);
    else logger.debug({ err: why }, `tftp native pump unavailable (${why}); transfers stay in node`);
    return null;
  }
}
