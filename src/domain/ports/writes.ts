/**
 * How writes are stopped and where they go, as two separate capabilities: a write freeze (PgBouncer's
 * PAUSE, an HTTP router's hold, or read-only roles in the source database) and a router (a proxy that
 * can send the applications' database to another server). A profile always has a freeze; it has a
 * router only with the proxy strategy.
 */
import type { Secret } from '../../secret.js';

/** A PostgreSQL server a router can send a database to. */
export interface Endpoint {
  host: string;
  port: number;
  database: string;
  user?: string;
  password?: Secret;
  /** The target (DigitalOcean) needs TLS. */
  tls?: boolean;
}

export interface RouterStatus {
  /** Where the cut-over database points now; null when the router cannot tell. */
  pointsTo: { host: string; port: number; database: string } | null;
  frozen: boolean;
  healthy: boolean;
  /** One line for the status message, e.g. "pgbouncer 1.18, transaction pooling, 12 clients". */
  detail: string;
}

/** What clients experience while writes are frozen, said plainly before anyone clicks. */
export type ClientImpact = 'queries-wait' | 'writes-fail' | 'connections-dropped';

/** Stops and restarts writes. Both calls are idempotent: a second freeze or resume is not an error. */
export interface WriteFreeze {
  readonly clientImpact: ClientImpact;
  freeze(): Promise<void>;
  resume(): Promise<void>;
  /** Before the freeze: opens and checks what freeze() and resume() need, so nothing is opened inside it. */
  prepare?(): Promise<void>;
  /**
   * freeze() in two parts, for a run: resolves once the freeze holds (PgBouncer answered PAUSE), with
   * `confirmed` settling when the freeze's own check of it is back; the run proves the fence meanwhile
   * and waits for the confirmation before it repoints. A failed confirmation has put writes back.
   */
  freezeThenConfirm?(): Promise<{ confirmed: Promise<void> }>;
  /** One round trip to the proxy's admin console on the connection the freeze uses (ms), for the predicted freeze. */
  roundTripMs?(): Promise<number>;
}

export interface Router {
  readonly kind: 'pgbouncer' | 'pgpool' | 'http';
  /** What this router cannot do, in words for the channel. */
  readonly limitations: readonly string[];
  inspect(): Promise<RouterStatus>;
  /** Sends new work to `to`, then verifies the router really points there (throws ProxyVerifyFailed if not). */
  repoint(to: Endpoint): Promise<void>;
  /** Before the freeze: opens and checks what repoint() needs; given `to`, readies the repoint to it. */
  prepare?(to?: Endpoint): Promise<void>;
  /**
   * repoint() and the resume of the router's own freeze (it pauses too: PgBouncer) sent together, for a
   * run whose every other step is done: writes resume as soon as the router has the new target, without
   * waiting for the bot to read the check back. If the router did not take `to`, writes resumed where
   * it still pointed (the freeze is over either way): it is pointed there again and ProxyVerifyFailed
   * is thrown with `details.resumed` true.
   */
  repointAndResume?(to: Endpoint): Promise<void>;
  close(): Promise<void>;
}
