/** This provisiond's version, from package.json (two folders up from src/util and dist/util). */
import { readFileSync } from 'node:fs';

export const PROVISIOND_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
