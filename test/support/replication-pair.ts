/**
 * A source and a target cluster tuned for fast, observable logical replication in tests: the source
 * notices a gone subscriber within 2 s, the target reports its position every second and retries
 * quickly. `migrationRequest` is the DigitalOcean start request for the source's database.
 */
import type { StartMigrationRequest } from '../../src/domain/ports/digitalocean.js';
import { Secret } from '../../src/secret.js';
import { startCluster, type Cluster } from './pg-cluster.js';

export function startReplicationPair(sourceDatabases: string[] = ['orders']): Promise<[Cluster, Cluster]> {
  return Promise.all([
    startCluster({ logical: true, databases: sourceDatabases, settings: { wal_sender_timeout: "'2s'" } }),
    startCluster({ settings: { wal_receiver_status_interval: 1, wal_retrieve_retry_interval: "'200ms'" } }),
  ]);
}

export function migrationRequest(source: Cluster, dbname = 'orders', password = source.password): StartMigrationRequest {
  return {
    source: { host: source.host, port: source.port, dbname, username: source.user, password: new Secret(password) },
    disableSsl: false,
    ignoreDbs: [],
  };
}
