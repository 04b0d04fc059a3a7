/**
 * Where a reloading node is, read from its boot timeline: `power` (the BMC was told), `dhcp` (the
 * firmware or the stage-1 got an address), `kernel` (the boot loader, kernel and initramfs were
 * fetched), `init` (the stage-1 asked for and ran the init nodescript), `getfile` (the VNFS image is
 * coming), `ready` (the node's ready agent checks in). Pure; the stage names are the ones the
 * servers and the node scripts record (src/servers/dhcp, src/daemon/*, initramfs/lib/provisiond,
 * nodescripts/init/all/10-vnfs and 80-ready-agent).
 */
import type { TimelineEvent } from '../registry/types.js';
import { IMAGE_FILE, SKELETON_FILE } from '../vnfs/capsule.js';

export const PHASES = ['power', 'dhcp', 'kernel', 'init', 'getfile', 'ready'] as const;
export type Phase = (typeof PHASES)[number];

/** The phase an event shows the node in, or null when it says nothing about it (a log line, a registration). */
export function phaseOf(e: Pick<TimelineEvent, 'source' | 'stage'>): Phase | null {
  const { source, stage } = e;
  if (source === 'power') return 'power';
  if (source === 'dhcp') return 'dhcp';
  if (source === 'tftp') return 'kernel';
  if (source === 'nodescript') return stage.startsWith('init ') ? 'init' : stage.startsWith('ready ') ? 'ready' : null;
  if (source === 'http' || source === 'perceus') {
    if (stage === 'ipxe-script') return 'kernel';
    if (stage.startsWith('nodescript init')) return 'init';
    if (stage.startsWith('nodescript ready')) return 'ready';
    if (stage.startsWith('http ')) return stage.endsWith(IMAGE_FILE) || stage.endsWith(SKELETON_FILE) ? 'getfile' : 'kernel';
    return null;
  }
  if (source === 'node') {
    if (stage === 'dhcp') return 'dhcp';
    if (stage === 'got-script' || stage === 'init-script-start' || stage === 'script-exit') return 'init';
    if (stage.startsWith('getfile') || stage === 'image') return 'getfile';
    if (stage === 'ready') return 'ready';
  }
  return null;
}

/** True when `b` is further on than `a` (a null phase is before any). */
export function isLater(b: Phase, a: Phase | string | null): boolean {
  return PHASES.indexOf(b) > (a === null ? -1 : PHASES.indexOf(a as Phase));
}

/**
 * Whether a failed step ends the reload of the node. Some failures are part of a normal boot and
 * retried by the client itself: a DHCP NAK or decline (the client starts over), a lease not
 * committed (no ACK sent, the client asks again), an HTTP transfer cut short (getfile resumes it).
 */
export function isFatal(e: Pick<TimelineEvent, 'source' | 'stage' | 'ok'>): boolean {
  if (e.ok) return false;
  if (e.source === 'power' || e.source === 'admin') return false;
  if (e.source === 'dhcp' && (e.stage === 'nak' || e.stage === 'decline' || e.stage === 'uncommitted')) return false;
  if (e.source === 'http' && e.stage.startsWith('http ')) return false;
  return true;
}
