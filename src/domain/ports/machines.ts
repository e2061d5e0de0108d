/**
 * The machines one session's cutover touches, built by the composition root from its profile: the
 * DigitalOcean API, the replication (lag, fence, sequences), the write freeze, and, with the proxy
 * strategy, the router with the two endpoints it switches between.
 */
import type { FreezeInputs } from '../freeze-prediction.js';
import type { SwitchPointVerifier } from './switch-point.js';
import type { Secret } from '../../secret.js';
import type { FrozenWhat } from '../attempt.js';
import type { PlanSettings } from '../cutover-plan.js';
import type { DigitalOceanApi } from './digitalocean.js';
import type { Fence, LagProbe } from './replication.js';
import type { ReverseReplication } from './reverse-replication.js';
import type { SequenceCopier } from './sequences.js';
import type { SplitBrainWatch } from './split-brain.js';
import type { Endpoint, Router, WriteFreeze } from './writes.js';

/** The profile's numbers the engine works with: the plan's, plus the target cluster. */
export interface CutoverSettings extends Omit<PlanSettings, 'proxyLabel'> {
  doClusterUuid: string;
  /** The target database applications move to. */
  targetDatabase: string;
}

/** The target's connection parameters, as handed out with the connection-parameters strategy. */
export interface TargetParameters {
  host: string;
  port: number;
  database: string;
  user: string;
  password: Secret;
  sslmode: string;
}

export interface PreflightItem {
  check: string;
  status: 'pass' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

/** Where the router sends the applications before the switch (source) and after it (target). */
export interface Routing {
  router: Router;
  source: Endpoint;
  target: Endpoint;
}

export interface SessionMachines {
  settings: CutoverSettings;
  digitalocean: DigitalOceanApi;
  lag: LagProbe;
  fence: Fence;
  sequences: SequenceCopier;
  freeze: WriteFreeze;
  /** What `freeze` freezes, journaled so a restarted bot resumes exactly that. */
  frozenWhat: FrozenWhat;
  /** Present with the proxy strategy only. */
  routing?: Routing;
  /** e.g. "pgbouncer database orders": where the switch happens, for the plan's wording. */
  routerLabel?: string;
  /** Preflight checks, including "target reachable through the router" for the proxy strategy. */
  preflight(): Promise<PreflightItem[]>;
  targetParameters(): Promise<TargetParameters>;
  /** Installs the fence and starts DigitalOcean's online migration; resolves to the migration id. */
  startMigration(): Promise<{ migrationId: string }>;
  /** Captures source and target at the switch point (inside the freeze) and compares them after the resume. */
  verifier?: SwitchPointVerifier;
  /** The figures the predicted freeze is made of, measured now (never inside a freeze). */
  freezeInputs?(): Promise<FreezeInputs>;
  /** How many client writes the freeze holds right now (PgBouncer cl_waiting), when known. */
  writesHeld?(): Promise<number | null>;
  /** Proxy strategy: the target's writes carried back to the source from the switch point, for a rollback that loses nothing. */
  reverse?: ReverseReplication;
  /** The split-brain watch on the profile's own source database (started after the switch, stopped when the session ends). */
  splitBrain?: SplitBrainWatch;
  close(): Promise<void>;
}
