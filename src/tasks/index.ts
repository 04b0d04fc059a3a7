/**
 * Tasks: long and fanned-out actions (power on many nodes, reload until ready, image builds) kept in
 * the registry with Drydock's states, run by a TaskRunner in the daemon (the admin API) or in the
 * CLI. Never imports cli/, api/ or daemon/.
 */
export { TaskRunner, type TaskRunnerOptions } from './runner.js';
export { TASK_ACTIONS, parseParams, type TaskAction, type TaskRequest, type TaskParams } from './params.js';
export { PHASES, phaseOf, type Phase } from './phase.js';
export { isFinished, rollUp } from './record.js';
export { passedPower, POWERED } from './actions/reload.js';
export { selectNodes, driverFor } from './nodes.js';
