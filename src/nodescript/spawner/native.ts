/**
 * The native spawner (spawner.c), compiled on first use (util/native-build.ts). Starting a script
 * costs it a vfork where the Perl spawner pays a full fork: the difference a boot storm feels.
 * Without a compiler (or source) this returns null and the Perl spawner is used.
 */
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../log/logger.js';
import { NativeBuildError, nativeBinarySync } from '../../util/native-build.js';

const SOURCE = fileURLToPath(new URL('./spawner.c', import.meta.url));

/** Path of the native spawner, building it if needed; null when it cannot be had. */
export function nativeSpawner(logger: Logger, env: NodeJS.ProcessEnv = process.env): string | null {
  try {
    const bin = nativeBinarySync(SOURCE, 'provisiond-spawner', env);
    logger.debug({ bin }, 'native nodescript spawner ready');
    return bin;
  } catch (err) {
    const why = (err as Error).message;
    if (err instanceof NativeBuildError && err.notPrivate) logger.warn({ err: why }, `native nodescript spawner: ${why}; using the perl spawner`);
    else logger.debug({ err: why }, `native nodescript spawner unavailable (${why}); using the perl spawner`);
    return null;
  }
}
