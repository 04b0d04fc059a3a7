/**
 * A 200-node boot storm (issue 22) against a real `provisiond serve` with its own DHCP, TFTP and
 * HTTP and the shipped nodescripts: every simulated node (test/lib/storm/sim.ts) powers on within
 * one second and boots as a real one does, from its own leased address. None may be lost; the
 * registry and the metrics must account for each of them. Small files keep it quick; the figures
 * (1,000 and 3,000 nodes, real sizes, the peer) are bench/storm.ts's.
 */
import t from 'tap';
import { needRoot } from '../lib/gate.js';
import { tempDir } from '../lib/cleanup.js';
import { parsePromText, sumOf } from '../lib/prom-text.js';
import { StormLab } from '../lib/storm/lab.js';
import { startProvisiond } from '../lib/storm/servers.js';

const NODES = Number(process.env.STORM_TEST_NODES ?? 200);

if (needRoot(t)) {
  t.test(`a storm of ${NODES} nodes: all ready, none lost, each counted once`, async (t) => {
    const dir = tempDir('pvd-storm-');
    const lab = StormLab.create(NODES, dir);
    t.teardown(() => lab.destroy());
    const p = await startProvisiond(lab, dir, { kernel: 512 << 10, initrd: 768 << 10, image: 256 << 10 });
    t.teardown(() => p.daemon.stop());

    const { report, lost } = await lab.simulate({ nodes: NODES, macPrefix: '52:5a:00', spreadMs: 1000, deadlineMs: 240_000 });
    t.comment(`${NODES} nodes: last ready after ${(report.wallMs / 1000).toFixed(1)} s, boot p50 ${(report.boot.p50 / 1000).toFixed(1)} s, p99 ${(report.boot.p99 / 1000).toFixed(1)} s`);
    t.same(report.failures, {}, 'no node lost in any phase');
    t.same(lost.map((l) => `${l.mac}: ${l.phase}: ${l.reason}`), [], 'the lost nodes, with where and why');
    t.equal(report.ready, NODES, `all ${NODES} nodes checked in as ready`);

    const nodes = JSON.parse(p.cli(['node', 'list', '--json'])) as Array<{ nodeid: string; state: string | null; ipaddr?: string | null; lastaddr?: string | null }>;
    t.equal(nodes.length, NODES, 'each node registered once');
    t.equal(nodes.filter((n) => n.state === 'ready').length, NODES, 'every node is ready in the registry');
    const addrs = new Set(nodes.map((n) => n.lastaddr ?? n.ipaddr));
    t.equal(addrs.size, NODES, 'no two nodes were given one address');

    const m = parsePromText(await p.metrics());
    const value = (name: string, labels: Record<string, string> = {}) => sumOf(m, name, labels);
    t.equal(value('provisiond_boot_duration_seconds_count'), NODES, 'the boot-duration histogram counts each boot once');
    t.equal(value('provisiond_tftp_transfers_completed_total'), NODES, 'one loader transfer per node');
    t.equal(value('provisiond_nodescript_failures_total'), 0, 'no nodescript failed on the master');
    t.equal(value('provisiond_dhcp_replies_sent_total', { type: 'ack' }) >= 3 * NODES, true, 'three DHCP ACKs per node at least (PXE ROM, iPXE, stage-1)');
  });
}
