/**
 * Boot durations from timeline steps (src/daemon/metrics/boot.ts): phases in order, the DHCP
 * exchanges of iPXE and the stage-1 inside one boot, a missing milestone merged into the next
 * phase, the ready agent's later check-ins not counted again, failed steps not milestones.
 */
import t from 'tap';
import { BootTracker, type BootPhase } from '../../src/daemon/metrics/boot.js';

const N = '52:54:00:00:00:01';

function tracker() {
  const boots: number[] = [];
  const phases: Array<[BootPhase, number]> = [];
  const b = new BootTracker({ boot: (s) => boots.push(s), phase: (p, s) => phases.push([p, s]) });
  const ev = (time: number, source: string, stage: string, ok = true) => b.event({ nodeid: N, source: source as never, stage, ok, time });
  return { b, boots, phases, ev };
}

t.test('a whole boot: five phases, one boot duration, later check-ins ignored', async (t) => {
  const { b, boots, phases, ev } = tracker();
  ev(1000, 'dhcp', 'offer');
  ev(1200, 'dhcp', 'ack');
  ev(2000, 'tftp', 'tftp undionly.kpxe');
  ev(3000, 'dhcp', 'offer'); // iPXE's own DHCP: the same boot
  ev(3100, 'dhcp', 'ack');
  ev(3500, 'http', 'ipxe-script');
  ev(9000, 'dhcp', 'offer'); // the stage-1's udhcpc
  ev(9100, 'dhcp', 'ack');
  ev(9500, 'http', 'nodescript init');
  ev(9900, 'http', 'nodescript init sent', false); // a script failed: the phase still ends here
  b.contact(N, 'init', 9600);
  b.contact(N, 'ready', 31_000);
  b.contact(N, 'ready', 331_000);
  t.same(phases, [['dhcp', 0.2], ['loader', 2.3], ['stage1', 6], ['nodescripts', 0.4], ['image', 21.1]]);
  t.same(boots, [30], 'first offer to first ready');
  t.equal(b.tracked, 0, 'forgotten once ready');
});

t.test('a missing milestone folds its phase into the next; failed steps are no milestones', async (t) => {
  const { b, boots, phases, ev } = tracker();
  ev(0, 'dhcp', 'offer');
  ev(100, 'dhcp', 'ack');
  ev(500, 'http', 'nodescript init', false); // refused: not the init
  ev(4100, 'http', 'nodescript init');
  b.contact(N, 'ready', 10_100);
  t.same(phases, [['dhcp', 0.1], ['stage1', 4], ['image', 6]]);
  t.same(boots, [10.1]);
});

t.test('a check-in with no boot seen (the daemon restarted meanwhile) is not a boot', async (t) => {
  const { b, boots, phases } = tracker();
  b.contact(N, 'ready', 5000);
  t.same(boots, []);
  t.same(phases, []);
});
