/**
 * The cluster's resources: nodes, groups, VNFS, scripts, power, bootdev, reload, timeline, verdict,
 * modules and lint. Each file of this folder exports its operations; this one lists them.
 */
import type { Operation } from '../operation.js';

export const resourceOperations: Operation[] = [];
