/**
 * One small interface for every proxy the applications talk to (PgBouncer, Pgpool-II, an HTTP admin
 * endpoint), and for the in-database write freeze used where a proxy cannot pause.
 */
import type { Secret } from '../secret.js';

/** A PostgreSQL server the proxy can send a database to. */
export interface Endpoint {
  host: string;
  port: number;
  database: string;
  user?: string;
  password?: Secret;
  /** The target (DigitalOcean) needs TLS. */
  tls?: boolean;
}

export interface ProxyStatus {
  /** Where the cut-over database points now; null when the proxy cannot tell. */
  pointsTo: { host: string; port: number; database: string } | null;
  frozen: boolean;
  healthy: boolean;
  /** One line for the status message, e.g. "pgbouncer 1.18, transaction pooling, 12 clients". */
  detail: string;
}

/** Stops and restarts writes. Both calls are idempotent: a second freeze or resume is not an error. */
export interface WriteFreeze {
  /** What clients experience while frozen, said plainly in Slack before anyone clicks. */
  readonly clientImpact: 'queries-wait' | 'writes-fail' | 'connections-dropped';
  freeze(): Promise<void>;
  resume(): Promise<void>;
}

export interface ProxyAdmin extends WriteFreeze {
  readonly kind: 'pgbouncer' | 'pgpool' | 'http';
  /** Whether freeze() holds clients (PgBouncer PAUSE) rather than being unsupported. */
  readonly canPause: boolean;
  /** What this proxy cannot do, in words for the channel. */
  readonly limitations: readonly string[];
  inspect(): Promise<ProxyStatus>;
  /** Sends new work to `to`, then verifies the proxy really points there (throws ProxyVerifyFailed if not). */
  repoint(to: Endpoint): Promise<void>;
  close(): Promise<void>;
}
