/**
 * The cluster's resources: nodes, groups, VNFS, scripts, power, bootdev, reload, timeline, verdict,
 * modules and lint. Each file of this folder exports its operations; this one lists them.
 */
import type { Operation } from '../operation.js';
import { groupOperations } from './groups.js';
import { allocationOperations } from './allocations.js';
import { nodeActionOperations } from './node-actions.js';
import { nodeOperations } from './nodes.js';
import { powerOperations } from './power.js';
import { scriptOperations } from './scripts.js';
import { vnfsOperations } from './vnfs.js';

// node-actions first: `/nodes/import` is matched before `/nodes/:node` would take "import" as a name.
export const resourceOperations: Operation[] = [...nodeActionOperations, ...nodeOperations, ...groupOperations, ...vnfsOperations, ...scriptOperations, ...powerOperations, ...allocationOperations];
