/**
 * Running one operation on many nodes: at most `concurrency` at a time, each attempt bounded by
 * `timeout` (its AbortSignal fires, and the driver kills what it started), failed attempts retried
 * `retries` times. A verb the driver cannot do is not retried. Results come back in input order and,
 * through `onResult`, as each node finishes (for a live display).
 */
import { errorMessage, ProvisiondError } from '../util/errors.js';
import { UnsupportedVerbError } from './types.js';

export interface FanOutOptions {
  concurrency: number;
  /** Seconds per attempt. */
  timeout: number;
  retries: number;
  /** Called as each item finishes. */
  onResult?: (result: FanOutResult<unknown>) => void;
}

export interface FanOutResult<T> {
  name: string;
  ok: boolean;
  value?: T;
  error?: string;
  attempts: number;
  /** Milliseconds, all attempts included. */
  ms: number;
}

/** Runs `work(item, signal)` for every item; never rejects (failures are results). */
export async function fanOut<I extends { name: string }, T>(
  items: readonly I[],
  work: (item: I, signal: AbortSignal) => Promise<T>,
  { concurrency, timeout, retries, onResult }: FanOutOptions,
): Promise<Array<FanOutResult<T>>> {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError(`fan-out concurrency must be a positive integer, not ${concurrency}`);
  const results: Array<FanOutResult<T>> = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      const item = items[i]!;
      const start = Date.now();
      let attempts = 0;
      let result: FanOutResult<T>;
      for (;;) {
        attempts++;
        try {
          const value = await work(item, AbortSignal.timeout(timeout * 1000));
          result = { name: item.name, ok: true, value, attempts, ms: Date.now() - start };
          break;
        } catch (err) {
          const final = attempts > retries || err instanceof UnsupportedVerbError || (err instanceof ProvisiondError && err.name === 'UsageError');
          if (final) {
            result = { name: item.name, ok: false, error: errorMessage(err), attempts, ms: Date.now() - start };
            break;
          }
        }
      }
      results[i] = result;
      onResult?.(result);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}
