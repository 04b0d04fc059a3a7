/**
 * The TFTP server as its own process, for tests and the bench that run it inside a network
 * namespace (`ip netns exec NS node --import tsx test/tftp/serve.ts '{"root":...}'`). Prints
 * `listening PORT`, then one JSON line per finished transfer; exits on SIGTERM.
 */
import { silentLogger } from '../../src/log/logger.js';
import { TftpServer } from '../../src/servers/tftp/server.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as { root: string; listen?: string; port?: number; timeout?: number; retries?: number; nativeMinBytes?: number | null };
const server = new TftpServer({ ...opts, logger: silentLogger(), onTransfer: (r) => process.stdout.write(`${JSON.stringify(r)}\n`) });
const { port } = await server.listen();
process.stdout.write(`listening ${port}\n`);
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
