/**
 * What the daemon watches: the config file (reloaded on change), the nodescripts tree (the engine
 * discovers scripts on every request, so a change is used by the next one; the watcher logs it),
 * and the VNFS trees (cached image checksums and freshness checks are dropped when they change).
 */
import { watch, type FSWatcher } from 'chokidar';
import { watch as fsWatch, type FSWatcher as FsWatcher } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
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
  let configWatcher: FsWatcher | null = null;
  if (configFile) {
    // Watch the folder: editors replace the file (write + rename) rather than change it in place.
    // With fs.watch and a name check, not chokidar: the folder may be the statedir, where every commit
    // of the database touches its WAL, and chokidar re-reads a watched folder on each change (a
    // readdir and an lstat per entry, hundreds of times a second while DHCP commits leases).
    const name = basename(configFile);
    configWatcher = fsWatch(dirname(configFile), (_event, file) => {
      if (file !== name) return;
      clearTimeout(timer);
      timer = setTimeout(onConfigChange, 150);
    });
    configWatcher.on('error', (err) => log.warn({ err: String(err) }, 'watching the config file failed'));
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
    configWatcher?.close();
    await Promise.all(watchers.map((w) => w.close()));
  };
}
