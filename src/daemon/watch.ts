/**
 * What the daemon watches: the config file (reloaded on change), the nodescripts tree (the engine
 * discovers scripts on every request, so a change is used by the next one; the watcher logs it),
 * and the VNFS trees (cached image checksums and freshness checks are dropped when they change).
 */
import { watch, type FSWatcher } from 'chokidar';
import { dirname, join, relative, sep } from 'node:path';
import type { Logger } from '../log/logger.js';

export interface WatchOptions {
  configFile: string | null;
  statedir: string;
  log: Logger;
  onConfigChange(): void;
  onVnfsChange(vnfsDir: string): void;
}

/** Starts the watchers and waits until they are ready; the returned function stops them. */
export async function startWatchers({ configFile, statedir, log, onConfigChange, onVnfsChange }: WatchOptions): Promise<() => Promise<void>> {
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  if (configFile) {
    // Watch the folder: editors replace the file (write + rename) rather than change it in place.
    const w = watch(dirname(configFile), { ignoreInitial: true, depth: 0 });
    w.on('all', (_event, path) => {
      if (path !== configFile) return;
      clearTimeout(timer);
      timer = setTimeout(onConfigChange, 150);
    });
    w.on('error', (err) => log.warn({ err: String(err) }, 'watching the config file failed'));
    watchers.push(w);
  }
  const scripts = watch(join(statedir, 'nodescripts'), { ignoreInitial: true });
  scripts.on('all', (event, path) => log.info({ event, script: relative(statedir, path) }, 'nodescripts changed: used from the next request'));
  scripts.on('error', (err) => log.warn({ err: String(err) }, 'watching nodescripts failed'));
  watchers.push(scripts);
  const vnfsRoot = join(statedir, 'vnfs');
  // Depth 2 sees an image, its sidecar and a rootfs's top level; deeper rootfs changes are found by the image freshness check.
  const vnfs = watch(vnfsRoot, { ignoreInitial: true, depth: 2 });
  vnfs.on('all', (_event, path) => {
    const name = relative(vnfsRoot, path).split(sep)[0];
    if (name && !name.startsWith('..')) onVnfsChange(join(vnfsRoot, name));
  });
  vnfs.on('error', (err) => log.warn({ err: String(err) }, 'watching vnfs failed'));
  watchers.push(vnfs);
  await Promise.all(watchers.map((w) => new Promise<void>((resolve) => w.once('ready', () => resolve()))));
  return async () => {
    clearTimeout(timer);
    await Promise.all(watchers.map((w) => w.close()));
  };
}
