/** What the VCL module's tests need: perl with JSON and LWP::UserAgent (Debian libjson-perl, libwww-perl). */
import { execFileSync } from 'node:child_process';
import { missingCommands } from '../../../lib/gate.js';

/** Why the module cannot run here, or null. */
export function perlWhyNot(): string | null {
  if (missingCommands(['perl']).length > 0) return 'perl not found: apt-get install perl libjson-perl libwww-perl';
  try {
    execFileSync('perl', ['-MJSON', '-MLWP::UserAgent', '-e', '1'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'perl lacks JSON or LWP::UserAgent: apt-get install libjson-perl libwww-perl';
  }
}
