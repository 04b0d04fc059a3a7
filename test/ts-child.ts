/**
 * How a test starts a TypeScript file in a child `node` process.
 *
 * Outside tap, through tsx. Under tap, which collects coverage from the children too, through the
 * TypeScript loader that tap's own test processes use: tsx's output is whitespace-minified, and a
 * child's coverage of minified code, merged with the tests' coverage of the same file, collapsed that
 * file to one line in tap's report (the line total then moved by 5 points from one run to the next).
 * bin/provisiond.js makes the same choice for the CLI and the daemon the tests start.
 */
const tapLoader = process.execArgv.filter((a) => a.startsWith('--import=') && a.includes('@tapjs/typescript'));

/** Node's arguments before the script: `node ...TS_NODE_ARGS file.ts`. */
export const TS_NODE_ARGS: readonly string[] = tapLoader.length > 0 ? ['--enable-source-maps', ...tapLoader] : ['--import', 'tsx'];
