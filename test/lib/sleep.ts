/** Waiting in tests and benches: one `sleep`, and a bounded poll for a condition. */

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `check` every `everyMs` until it returns true (resolves true) or `timeoutMs` passed (resolves
 * false): the caller asserts on the result and says what did not happen.
 */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 25): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= end) return false;
    await sleep(everyMs);
  }
}
