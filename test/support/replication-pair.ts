/** `migrationRequest` is the DigitalOcean start request for a rig source's database (the pair lives in src/sandbox). */
import type { StartMigrationRequest } from '../../src/domain/ports/digitalocean.js';
import { Secret } from '../../src/secret.js';
import type { Cluster } from './pg-cluster.js';

export { startReplicationPair } from '../../src/sandbox/replication-pair.js';

export function migrationRequest(source: Cluster, dbname = 'orders', password = source.password): StartMigrationRequest {
  return {
    source: { host: source.host, port: source.port, dbname, username: source.user, password: new Secret(password) },
    disableSsl: false,
    // DigitalOcean migrates every database but the ignored ones: the rig's test databases only.
    ignoreDbs: ['postgres'],
  };
}
