/**
 * A source and a target cluster tuned for fast, observable logical replication: the source notices a
 * gone subscriber within 2 s, the target reports its position every second and retries quickly.
 */
import { startCluster, type Cluster } from './pg-cluster.js';

export function startReplicationPair(sourceDatabases: string[] = ['orders']): Promise<[Cluster, Cluster]> {
  return Promise.all([
    startCluster({ logical: true, databases: sourceDatabases, settings: { wal_sender_timeout: "'2s'" } }),
    startCluster({ settings: { wal_receiver_status_interval: 1, wal_retrieve_retry_interval: "'200ms'" } }),
  ]);
}
