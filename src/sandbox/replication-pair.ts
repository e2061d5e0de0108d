/**
 * A source and a target cluster tuned for fast, observable logical replication: the source notices a
 * gone subscriber within 2 s, the target reports its position every second and retries quickly; a
 * logical target can also publish (replicating back after the switch).
 */
import { startCluster, type Cluster } from './pg-cluster.js';

export function startReplicationPair(sourceDatabases: string[] = ['orders'], options: { targetLogical?: boolean } = {}): Promise<[Cluster, Cluster]> {
  // A logical target (as DigitalOcean's clusters are) can replicate back to the source after the switch.
  const receiver = { wal_receiver_status_interval: 1, wal_retrieve_retry_interval: "'200ms'" };
  return Promise.all([
    startCluster({ logical: true, databases: sourceDatabases, settings: { wal_sender_timeout: "'2s'" } }),
    startCluster({ logical: options.targetLogical ?? false, settings: options.targetLogical ? { ...receiver, wal_sender_timeout: "'2s'" } : receiver }),
  ]);
}
