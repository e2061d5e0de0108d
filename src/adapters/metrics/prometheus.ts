/**
 * The bot's Prometheus metrics (prom-client), served at GET /metrics on the bot's HTTP server. Every
 * definition is here; the rest of the code reports through narrow ports: the API clients through
 * `ApiCallMetrics`, the engine and use cases through their facts (this is an `EventListener`), and
 * the lag comes from the samples the report scheduler stores, read at scrape time, so that every
 * replica shows the same figures. Labels are names and ids only: never a DSN, host or token.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EventListener, Fact, SessionEvent } from '../../app/facts.js';
import type { Gate } from '../../domain/gates.js';
import type { ApiCallMetrics, ExternalApi, RetryReason } from '../../domain/ports/metrics.js';
import type { SessionWithLag } from '../../reports/session-overview.js';

/** Where the per-session figures come from at scrape time (the report scheduler's samples). */
export interface SessionReadings {
  active(): Promise<SessionWithLag[]>;
}

export interface PrometheusMetricsOptions {
  /** The process metrics prom-client collects (CPU, memory, event loop, GC). Default on. */
  defaultMetrics?: boolean;
  /** Monotonic milliseconds, for freezes that end by a resume. */
  nowMs?: () => number;
}

/** A label value from outside the bot (an API's own error code): short and plain, or `other`. */
const bounded = (value: string) => (/^[A-Za-z0-9_.]{1,64}$/.test(value) ? value : 'other');

/** The gate a refused action belongs to, if any (`freeze_approve` → `freeze`). */
function gateOfAction(action: string): Gate | undefined {
  if (action.startsWith('freeze_')) return 'freeze';
  if (action.startsWith('switch_')) return 'switch';
  return undefined;
}

/** The gate decision a fact is, if it is one. Stale clicks (quiet refusals) are not decisions. */
function gateDecision(fact: Fact): { gate: Gate; decision: string } | undefined {
  switch (fact.type) {
    case 'gate_requested':
      return { gate: fact.gate, decision: 'requested' };
    case 'gate_approved':
      return { gate: fact.gate, decision: 'approved' };
    case 'gate_withdrawn':
      return { gate: fact.gate, decision: 'withdrawn' };
    case 'freeze_refused':
      return { gate: 'freeze', decision: 'refused' };
    case 'refused': {
      const gate = gateOfAction(fact.action);
      return gate && !fact.quiet ? { gate, decision: 'refused' } : undefined;
    }
    default:
      return undefined;
  }
}

export class PrometheusMetrics implements ApiCallMetrics, EventListener {
  readonly #registry = new Registry();
  readonly #readings: SessionReadings;
  readonly #nowMs: () => number;
  /** When this process saw each session's freeze begin (a resume's duration is measured from it). */
  readonly #frozenSince = new Map<string, number>();
  readonly #lagBytes: Gauge;
  readonly #lagSeconds: Gauge;
  readonly #lagSampledAt: Gauge;
  readonly #sessions: Gauge;
  readonly #freezes: Histogram;
  readonly #gateDecisions: Counter;
  readonly #apiErrors: Counter;
  readonly #apiRetries: Counter;

  constructor(readings: SessionReadings, options: PrometheusMetricsOptions = {}) {
    this.#readings = readings;
    this.#nowMs = options.nowMs ?? (() => performance.now());
    const registers = [this.#registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.#registry });
    const gauge = (name: string, help: string, labelNames: string[]) => new Gauge({ name, help, labelNames, registers });
    const counter = (name: string, help: string, labelNames: string[]) => new Counter({ name, help, labelNames, registers });
    const perSession = ['session', 'profile'];
    this.#lagBytes = gauge('pgcutover_replication_lag_bytes', 'WAL the target has not confirmed, as the reports last sampled it', perSession);
    this.#lagSeconds = gauge('pgcutover_replication_lag_seconds', 'Replication lag in time, as last sampled (absent when it cannot be estimated)', perSession);
    this.#lagSampledAt = gauge('pgcutover_replication_lag_sampled_timestamp_seconds', 'When the lag was last sampled (Unix time)', perSession);
    this.#sessions = gauge('pgcutover_sessions', 'Active migration sessions by state', ['profile', 'state']);
    this.#freezes = new Histogram({
      name: 'pgcutover_freeze_duration_seconds',
      help: 'How long writes were frozen, by how the freeze ended (switched or resumed)',
      labelNames: ['profile', 'outcome'],
      buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300],
      registers,
    });
    this.#gateDecisions = counter('pgcutover_gate_decisions_total', 'Gate requests, approvals, withdrawals and refusals', ['profile', 'gate', 'decision']);
    this.#apiErrors = counter('pgcutover_api_errors_total', 'Failed requests to DigitalOcean or Slack (every attempt, retried or not)', ['api', 'operation', 'error']);
    this.#apiRetries = counter('pgcutover_api_retries_total', 'Failed requests to DigitalOcean or Slack tried again', ['api', 'reason']);
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  failed(api: ExternalApi, operation: string, error: string): void {
    this.#apiErrors.inc({ api, operation, error: bounded(error) });
  }

  retried(api: ExternalApi, reason: RetryReason): void {
    this.#apiRetries.inc({ api, reason });
  }

  published({ session, fact }: SessionEvent): void {
    const decision = gateDecision(fact);
    if (decision) this.#gateDecisions.inc({ profile: session.profile, ...decision });
    switch (fact.type) {
      case 'frozen':
        this.#frozenSince.set(session.id, this.#nowMs());
        break;
      case 'switched':
        this.#frozenSince.delete(session.id);
        if (fact.frozenMs !== null) this.#freezes.observe({ profile: session.profile, outcome: 'switched' }, fact.frozenMs / 1000);
        break;
      case 'resumed': {
        const since = this.#frozenSince.get(session.id);
        this.#frozenSince.delete(session.id);
        if (since !== undefined) this.#freezes.observe({ profile: session.profile, outcome: 'resumed' }, (this.#nowMs() - since) / 1000);
        break;
      }
      case 'finished':
      case 'aborted':
      case 'rolled_back':
        this.#frozenSince.delete(session.id);
        break;
      default:
        break;
    }
  }

  /** The exposition text, with the per-session gauges read afresh (ended sessions drop out). */
  async render(): Promise<string> {
    const readings = await this.#readings.active();
    // Synchronous from here to the snapshot: a concurrent scrape never sees half-reset gauges.
    for (const gauge of [this.#lagBytes, this.#lagSeconds, this.#lagSampledAt, this.#sessions]) gauge.reset();
    const states = new Map<string, { profile: string; state: string; count: number }>();
    for (const { session, lag } of readings) {
      const key = `${session.profile}\u0000${session.state}`;
      const entry = states.get(key) ?? { profile: session.profile, state: session.state, count: 0 };
      entry.count += 1;
      states.set(key, entry);
      if (!lag?.known) continue;
      const labels = { session: session.id, profile: session.profile };
      this.#lagBytes.set(labels, lag.bytes);
      if (lag.seconds !== null) this.#lagSeconds.set(labels, lag.seconds);
      this.#lagSampledAt.set(labels, lag.at.getTime() / 1000);
    }
    for (const { profile, state, count } of states.values()) this.#sessions.set({ profile, state }, count);
    return this.#registry.metrics();
  }
}
