/**
 * How the bot connects to the databases it migrates (source and target), as opposed to its own store.
 * One place turns a configured connection into `pg` options, so TLS and timeouts are the same everywhere.
 */
import pg from 'pg';
import type { Secret } from '../../secret.js';

export interface PostgresTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  password: Secret;
  sslmode?: 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
  /** PEM of the CA to verify the server with (verify-ca, verify-full), e.g. DigitalOcean's cluster CA; default: the system's. */
  ca?: string;
}

export interface ConnectOptions {
  applicationName?: string;
  /** Client-side limit on each query (milliseconds). */
  queryTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export function clientConfig(target: PostgresTarget, options: ConnectOptions = {}): pg.ClientConfig {
  const sslmode = target.sslmode ?? 'prefer';
  return {
    host: target.host,
    port: target.port,
    database: target.database,
    user: target.user,
    password: target.password.reveal(),
    application_name: options.applicationName ?? 'pgcutover',
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    query_timeout: options.queryTimeoutMs ?? 30_000,
    // node-postgres has no "prefer": it would fail against a server without TLS, so prefer means plain.
    ssl:
      sslmode === 'disable' || sslmode === 'prefer'
        ? false
        : {
            rejectUnauthorized: sslmode === 'verify-ca' || sslmode === 'verify-full',
            ...(target.ca ? { ca: target.ca } : {}),
            // verify-ca checks the chain only, as libpq does; verify-full also the host name.
            ...(sslmode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
          },
  };
}

/** A connected client; the caller ends it. Connection errors after connect are logged by the caller's pool or ignored. */
export async function connect(target: PostgresTarget, options: ConnectOptions = {}): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(target, options));
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** A small pool for repeated probes against one database. */
export function pool(target: PostgresTarget, options: ConnectOptions & { max?: number } = {}): pg.Pool {
  const created = new pg.Pool({ ...clientConfig(target, options), max: options.max ?? 3 });
  created.on('error', () => undefined);
  return created;
}
