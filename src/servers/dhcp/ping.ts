/**
 * dhcp.pingCheck: whether some machine already answers on an address before it is offered. ICMP
 * needs a raw socket Node does not have, so the system's `ping` is asked (one echo, 500 ms).
 */
import { execFile } from 'node:child_process';

export function pingAnswers(address: string, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('ping', ['-n', '-q', '-c', '1', '-W', String(timeoutMs / 1000), address], { timeout: timeoutMs + 1000 }, (err) => resolve(!err));
  });
}
