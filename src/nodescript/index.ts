/**
 * The nodescript engine: for a node in a provisionary state, run the scripts found under
 * `<statedir>/nodescripts/<state>/{all,vnfs/V,group/G,node/N}` on the master and stream their
 * concatenated output to the node as one shell script. See README "The nodescripts contract".
 */
export { createNodescriptEngine, SCRIPT_START, SCRIPT_END, failureLine, shellQuote } from './engine.js';
export { discover, nodeFolders, isIgnoredName, compareBytewise, FOLDER_ORDER } from './discover.js';
export { scriptEnv, masterContextFromConfig, engineOptionsFromConfig, attrVariable, MASTER_VARIABLES, SCRIPT_PATH, defaultConcurrency } from './env.js';
export type { EngineOptions, MasterContext, NodeContext, NodescriptEngine, PlanEntry, RenderOptions, ScriptResult, FolderKind } from './types.js';
