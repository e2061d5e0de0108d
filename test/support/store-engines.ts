/**
 * Store tests run the same cases on both engines the bot supports: embedded PGlite and a real
 * PostgreSQL rig cluster. Call at a test file's top level; the cluster lives for the file.
 */
import { afterAll, beforeAll } from 'vitest';
import { createLogger } from '../../src/log.js';
import { Secret } from '../../src/secret.js';
import { openEmbedded, openPostgres, type Database } from '../../src/adapters/store/database.js';
import { startCluster, type Cluster } from './pg-cluster.js';

export type StoreEngine = [name: string, open: () => Promise<Database>];

export function useStoreEngines(databases: string[] = ['store']): { engines: StoreEngine[]; cluster: () => Cluster } {
  let cluster: Cluster | undefined;
  beforeAll(async () => {
    cluster = await startCluster({ databases });
  });
  afterAll(() => cluster?.stop());
  const running = () => {
    if (!cluster) throw new Error('the store cluster is not running (useStoreEngines at the top level?)');
    return cluster;
  };
  const log = createLogger('silent');
  return {
    cluster: running,
    engines: [
      ['embedded (PGlite)', () => openEmbedded(undefined)],
      ['PostgreSQL', async () => openPostgres(new Secret(running().connectionString(databases[0])), log)],
    ],
  };
}
