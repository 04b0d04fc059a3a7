/** The registry contract against the SQLite backend (a fresh database file per test). */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log/logger.js';
import { SqliteRegistry } from '../../src/registry/sqlite/registry.js';
import { adminContract } from './admin-contract.js';
import { registryContract, type ContractBackend } from './contract.js';

const sqlite: ContractBackend = {
  async create(t) {
    const dir = mkdtempSync(join(tmpdir(), 'pvd-registry-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'var', 'provisiond.db');
    return async () => SqliteRegistry.open({ path, logger: silentLogger() });
  },
};
registryContract(t, sqlite);
adminContract(t, sqlite);
