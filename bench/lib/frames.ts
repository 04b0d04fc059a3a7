/**
 * Frame times in a page, for bench/ui: a script run in the page before its own (`addInitScript`)
 * that records the long tasks of every load, and on demand the deltas between animation frames
 * (requestAnimationFrame) with the Long Animation Frames Chromium reports meanwhile; and the pure
 * summary of those deltas.
 */

/** What the browser reported as long animation frames (> 50 ms) while frames were recorded. */
export interface LongFrames {
  count: number;
  /** The longest one's duration and the longest blocking time (ms). */
  longest: number;
  blocking: number;
  /** The three longest, with where their time went (for the console: what to fix). */
  worst?: Array<{ duration: number; blocking: number; styleAndLayout: number; scripts: string[] }>;
}

export interface FrameStats {
  count: number;
  max: number;
  p99: number;
  /** Frames longer than 50 ms. */
  over50: number;
}

/**
 * Runs in the page (a string: the page's globals, not this module's). `window.__pvdLong`: long tasks
 * since the page started; `window.__pvdFrames.start()` / `.stop()` -> { deltas, long }.
 */
export const INIT_SCRIPT = `(() => {
  window.__pvdLong = [];
  try { new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__pvdLong.push({ duration: e.duration }); }).observe({ type: 'longtask', buffered: true }); } catch {}
  let on = false, last = 0, deltas = [], loaf = [];
  // Each long frame with where its time went: scripts (who called them), then style and layout, then paint.
  const where = (e) => ({
    duration: e.duration,
    blocking: e.blockingDuration || 0,
    styleAndLayout: e.styleAndLayoutStart ? Math.round(e.startTime + e.duration - e.styleAndLayoutStart) : 0,
    scripts: (e.scripts || []).map((s) => Math.round(s.duration) + ' ms ' + s.invoker + ' ' + String(s.sourceURL).split('/').pop() + ':' + (s.sourceFunctionName || '?')),
  });
  try { new PerformanceObserver((l) => { if (on) for (const e of l.getEntries()) loaf.push(where(e)); }).observe({ type: 'long-animation-frame' }); } catch {}
  const tick = (t) => {
    if (!on) return;
    if (last) deltas.push(t - last);
    last = t;
    requestAnimationFrame(tick);
  };
  window.__pvdFrames = {
    start() { on = true; last = 0; deltas = []; loaf = []; requestAnimationFrame(tick); },
    stop() {
      on = false;
      const worst = [...loaf].sort((a, b) => b.duration - a.duration).slice(0, 3);
      return { deltas, long: { count: loaf.length, longest: Math.max(0, ...loaf.map((e) => e.duration)), blocking: Math.max(0, ...loaf.map((e) => e.blocking)), worst } };
    },
  };
})();`;

/** Max, 99th percentile and frames over 50 ms of a series of frame deltas (ms). */
export function frameStats(deltas: number[]): FrameStats {
  if (deltas.length === 0) return { count: 0, max: 0, p99: 0, over50: 0 };
  const sorted = [...deltas].sort((a, b) => a - b);
  const p99 = sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!;
  return { count: deltas.length, max: sorted.at(-1)!, p99, over50: deltas.filter((d) => d > 50).length };
}
