/**
 * Runs windowedGet (client.ts) as its own process, so a test can fetch from inside a network
 * namespace: `fetch.ts HOST PORT FILE BLKSIZE WINDOWSIZE` prints the sha256 of what arrived.
 */
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { windowedGet } from './client.js';

const [host, port, file, blksize, windowsize] = process.argv.slice(2) as [string, string, string, string, string];
const socket = createSocket('udp4');
await new Promise<void>((r) => socket.bind(0, r));
const data = await windowedGet(socket, host, Number(port), file, Number(blksize), Number(windowsize));
process.stdout.write(`${createHash('sha256').update(data).digest('hex')} ${data.length}\n`);
socket.close();
