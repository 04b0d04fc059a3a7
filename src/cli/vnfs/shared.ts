/** What the vnfs verbs share: which nodes use a VNFS, sizes and ages for humans, a progress line. */
import type { Command } from 'commander';
import type { Config } from '../../config/schema.js';
import { openRegistry } from '../../registry/open.js';
import { cliLogger } from '../node/shared.js';

/** Names of the nodes whose (inherited) VNFS is each name. An unreadable registry gives null. */
export async function nodesByVnfs(config: Config, err: NodeJS.WritableStream): Promise<Map<string, string[]> | null> {
  let reg;
  try {
    reg = await openRegistry(config, cliLogger(err));
  } catch {
    return null;
  }
  try {
    const out = new Map<string, string[]>();
    for (const n of await reg.listNodes()) {
      const r = await reg.resolve(n, config.defaults);
      if (!r.vnfs) continue;
      out.set(r.vnfs, [...(out.get(r.vnfs) ?? []), r.name]);
    }
    return out;
  } finally {
    await reg.close();
  }
}

/**
 * Tells the servers sharing the database that VNFS `name` was deleted here: its published image is
 * forgotten, so none fetches it back. Null when done (or nothing to do), else why not.
 */
export async function forgetVnfsImage(config: Config, name: string, err: NodeJS.WritableStream): Promise<string | null> {
  let reg;
  try {
    reg = await openRegistry(config, cliLogger(err));
  } catch (e) {
    return (e as Error).message;
  }
  try {
    await reg.forgetImage(name);
    return null;
  } catch (e) {
    return (e as Error).message;
  } finally {
    await reg.close();
  }
}

export function size(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1073741824) return `${(n / 1048576).toFixed(1)} MiB`;
  return `${(n / 1073741824).toFixed(2)} GiB`;
}

/** A progress line on stderr when it is a terminal; nothing otherwise. */
export function progress(err: NodeJS.WritableStream & { isTTY?: boolean }, what: string, total: number): { add(n: number): void; done(): void } {
  let doneBytes = 0;
  let last = 0;
  const tty = err.isTTY === true;
  const draw = (): void => {
    const pct = total > 0 ? Math.min(100, Math.floor((doneBytes / total) * 100)) : 100;
    const bar = '#'.repeat(Math.floor(pct / 4)).padEnd(25, '.');
    err.write(`\r${what} [${bar}] ${String(pct).padStart(3)}% ${size(doneBytes)} of ${size(total)} `);
  };
  return {
    add(n: number) {
      doneBytes += n;
      if (tty && Date.now() - last > 100) {
        last = Date.now();
        draw();
      }
    },
    done() {
      if (tty) {
        draw();
        err.write('\n');
      }
    },
  };
}

export type { Command };
