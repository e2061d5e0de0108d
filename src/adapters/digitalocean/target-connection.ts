/**
 * How the bot connects to the target: DigitalOcean's cluster details with the profile's overrides,
 * verified against the cluster's own CA (GET …/ca) with `verify-full` whenever DigitalOcean says the
 * connection uses TLS. Reading the CA changes nothing on DigitalOcean, so it needs no gate. A password
 * DigitalOcean left out (a token without `database:view_credentials`) fails here, naming the scope,
 * instead of becoming an empty password and a confusing login failure later.
 */
import type { DigitalOceanApi } from '../../domain/ports/digitalocean.js';
import type { PostgresTarget } from '../source/connect.js';
import { missingCredentials } from './digitalocean-client.js';

export type TargetConnection = PostgresTarget & { sslmode: NonNullable<PostgresTarget['sslmode']> };

/**
 * The target's connection for one migrated database: the profile's own database is the target's
 * (`digitalocean.database`), every other migrated database its namesake there.
 */
export function targetFor(target: TargetConnection, database: string, own: boolean): TargetConnection {
  return own ? target : { ...target, database };
}

export interface TargetProfile {
  clusterUuid: string;
  /** digitalocean.database */
  database: string;
  /** digitalocean.target overrides */
  target?: Partial<Omit<TargetConnection, 'ca'>>;
}

export async function resolveTarget(api: Pick<DigitalOceanApi, 'getCluster' | 'getCaCertificate'>, profile: TargetProfile): Promise<TargetConnection> {
  const cluster = await api.getCluster(profile.clusterUuid);
  const o = profile.target ?? {};
  const user = o.user ?? cluster.connection.user;
  const password = o.password ?? cluster.connection.password;
  if (password.reveal() === '') throw missingCredentials(`the target's user "${user}"`);
  const sslmode = o.sslmode ?? (cluster.connection.ssl ? 'verify-full' : 'disable');
  const ca = sslmode === 'verify-ca' || sslmode === 'verify-full' ? await api.getCaCertificate(profile.clusterUuid) : undefined;
  return {
    host: o.host ?? cluster.connection.host,
    port: o.port ?? cluster.connection.port,
    database: o.database ?? profile.database,
    user,
    password,
    sslmode,
    ...(ca ? { ca } : {}),
  };
}
