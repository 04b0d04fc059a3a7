/** bench/ui's frame summary: what "max", "p99" and "over 50 ms" mean for a series of frame deltas. */
import t from 'tap';
import { frameStats } from '../../bench/lib/frames.js';

t.test('frame stats', async (t) => {
  t.same(frameStats([]), { count: 0, max: 0, p99: 0, over50: 0 }, 'no frame recorded: zeros, not NaN');
  // 99 smooth frames and one of 80 ms: p99 is the 99th of 100 (still smooth), max the bad one.
  const deltas = [...Array.from({ length: 99 }, () => 16.7), 80];
  t.same(frameStats(deltas), { count: 100, max: 80, p99: 16.7, over50: 1 });
  t.equal(frameStats([...deltas, 51, 50]).over50, 2, 'exactly 50 ms is not over');
  t.equal(frameStats([...deltas, 90, 90]).p99, 90, 'two bad frames in 102 reach the 99th percentile');
});
