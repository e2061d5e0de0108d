/**
 * The content of a periodic lag report, as pure data: built from the session, the samples taken since
 * the last report, DigitalOcean's view of the migration and the profile's thresholds. The Slack
 * adapter only lays it out; nothing here talks to Slack, PostgreSQL or HTTP.
 */
import type { DatabaseLag, LagSample } from './ports/replication.js';
import { lagTrend } from './lag-trend.js';
import type { Session } from './session.js';
import { describeState } from './session.js';
import { sparkline } from './sparkline.js';

/** One observation of a session: lag (known or not, with why) and where the source's WAL is. */
export type Observation =
  | {
      at: Date;
      known: true;
      bytes: number;
      seconds: number | null;
      slot: string;
      slotActive: boolean;
      /** pg_current_wal_lsn() as a byte position; the write rate is its slope. Null when not measured. */
      walPosition: number | null;
      /** Each migrated database's lag, when the session covers several (the figures above are the largest). */
      databases?: DatabaseLag[];
    }
  | { at: Date; known: false; reason: string; walPosition: number | null; databases?: DatabaseLag[] };

/** DigitalOcean's status of the online migration, or why it is not known. */
export type DoView =
  | { known: true; status: 'running' | 'syncing' | 'canceled' | 'error' | 'done'; id: string; createdAt: Date }
  | { known: true; status: 'none' }
  | { known: false; reason: string };

export interface ReportThresholds {
  /** gates.maxLagBytesToFreeze */
  maxLagBytesToFreeze: number;
}

export type TrendDirection = 'rising' | 'falling' | 'steady' | 'unknown';

export interface LagReport {
  sessionId: string;
  at: Date;
  title: string;
  doStatus: string;
  lag: { known: true; bytes: number; seconds: number | null } | { known: false; reason: string };
  trend: {
    direction: TrendDirection;
    /** Lag now minus lag at the first known sample of the window. */
    deltaBytes: number | null;
    sparkline: string;
    samples: number;
  };
  /** WAL written on the source per second over the window. */
  writeRateBytesPerSecond: number | null;
  /** How fast the lag is shrinking (positive) or growing (negative), bytes per second. */
  catchUpBytesPerSecond: number | null;
  /** Time to catch up at the current rate, only when the lag is falling. */
  etaSeconds: number | null;
  freezeGate: { open: boolean; reasons: string[] };
  /** Slack mrkdwn lines, in order. */
  lines: string[];
}

export interface ReportInput {
  session: Pick<Session, 'id' | 'state' | 'profile'>;
  /** Samples since the previous report, oldest first; the last one is the current measurement. */
  window: readonly Observation[];
  doView: DoView;
  thresholds: ReportThresholds;
  now: Date;
}

export function buildReport(input: ReportInput): LagReport {
  const { session, window, doView, thresholds, now } = input;
  const current = window.at(-1);
  const known = window.filter((o): o is Extract<Observation, { known: true }> => o.known);
  const firstKnown = known[0];
  const lastKnown = known.at(-1);

  const lag: LagReport['lag'] =
    current === undefined
      ? { known: false, reason: 'no measurement yet' }
      : current.known
        ? { known: true, bytes: current.bytes, seconds: current.seconds }
        : { known: false, reason: current.reason };

  const deltaBytes = firstKnown && lastKnown && current?.known ? lastKnown.bytes - firstKnown.bytes : null;
  // Direction, rate and ETA: the shared trend (src/domain/lag-trend.ts) over the window's samples.
  const trend = lagTrend(window.map(toLagSample), { minSamples: 2 });
  const direction: TrendDirection = trend.direction;
  const catchUp = trend.bytesPerSecond === null ? null : -trend.bytesPerSecond;
  const etaSeconds = lag.known && trend.etaSeconds !== null && trend.etaSeconds > 0 ? Math.ceil(trend.etaSeconds) : null;

  const withWal = window.filter((o) => o.walPosition !== null);
  const writeRate = regressionSlope(withWal.map((o) => ({ t: o.at.getTime() / 1000, y: o.walPosition as number })));

  const freezeGate = freezeGateView(session.state, lag, current, doView, thresholds);
  const doStatus = describeDo(doView);
  const spark = sparkline(window.map((o) => (o.known ? o.bytes : null)), { fromZero: true });

  const lines: string[] = [];
  lines.push(`*DigitalOcean:* ${doStatus} · *session:* ${describeState(session.state)}`);
  lines.push(
    lag.known
      ? `*Lag:* ${formatBytes(lag.bytes)}${lag.seconds === null ? ' (time estimate not available)' : ` ≈ ${formatDuration(lag.seconds)}`}`
      : `*Lag:* unknown: ${lag.reason}`,
  );
  const perDatabase = databaseLagLine(current?.databases);
  if (perDatabase) lines.push(`*Per database:* ${perDatabase}`);
  if (window.length > 0) {
    const change =
      deltaBytes === null ? '' : ` ${deltaBytes >= 0 ? '+' : '−'}${formatBytes(Math.abs(deltaBytes))} since the last report`;
    lines.push(`*Trend:* \`${spark}\` ${direction}${change}`);
  }
  lines.push(`*Writes on the source:* ${writeRate === null ? 'not measured' : `${formatBytes(Math.max(0, writeRate))}/s of WAL`}`);
  if (etaSeconds !== null) lines.push(`*Catching up:* ${formatBytes(catchUp ?? 0)}/s, about ${formatDuration(etaSeconds)} to zero`);
  else if (direction === 'rising') lines.push('*Catching up:* no, the lag is growing');
  lines.push(
    freezeGate.open
      ? '*Freeze gate:* would be open'
      : `*Freeze gate:* would be closed: ${freezeGate.reasons.join('; ')}`,
  );

  return {
    sessionId: session.id,
    at: now,
    title: `Lag report for ${session.profile}`,
    doStatus,
    lag,
    trend: { direction, deltaBytes, sparkline: spark, samples: window.length },
    writeRateBytesPerSecond: writeRate === null ? null : Math.max(0, writeRate),
    catchUpBytesPerSecond: catchUp,
    etaSeconds,
    freezeGate,
    lines,
  };
}

export function toLagSample(o: Observation): LagSample {
  const databases = o.databases ? { databases: o.databases } : {};
  return o.known
    ? { known: true, at: o.at, slot: o.slot, slotActive: o.slotActive, bytes: o.bytes, seconds: o.seconds, ...databases }
    : { known: false, at: o.at, reason: o.reason, ...databases };
}

/** Each migrated database's lag on one line, when the session covers several (else null). */
export function databaseLagLine(databases: readonly DatabaseLag[] | undefined): string | null {
  if (!databases || databases.length < 2) return null;
  return databases
    .map((d) =>
      d.known
        ? `${d.database} ${formatBytes(d.bytes)}${d.seconds === null ? '' : ` ≈ ${formatDuration(d.seconds)}`}`
        : `${d.database} unknown (${d.reason})`,
    )
    .join(' · ');
}

function freezeGateView(
  state: Session['state'],
  lag: LagReport['lag'],
  current: Observation | undefined,
  doView: DoView,
  thresholds: ReportThresholds,
): { open: boolean; reasons: string[] } {
  const reasons: string[] = [];
  if (state !== 'syncing') reasons.push(`the session is ${describeState(state)}`);
  if (!lag.known) reasons.push('the lag is unknown');
  else if (lag.bytes > thresholds.maxLagBytesToFreeze) {
    reasons.push(`lag ${formatBytes(lag.bytes)} is above ${formatBytes(thresholds.maxLagBytesToFreeze)}`);
  }
  if (current?.known && !current.slotActive) reasons.push(`slot "${current.slot}" is not active`);
  if (!doView.known) reasons.push('the DigitalOcean status is unknown');
  else if (doView.status !== 'syncing') reasons.push(`DigitalOcean says ${doView.status}, not syncing`);
  return { open: reasons.length === 0, reasons };
}

function describeDo(view: DoView): string {
  if (!view.known) return `unknown (${view.reason})`;
  if (view.status === 'none') return 'no online migration';
  return view.status;
}

/** Least-squares slope of y over t (per second), or null with fewer than two distinct times. */
export function regressionSlope(points: readonly { t: number; y: number }[]): number | null {
  if (points.length < 2) return null;
  const n = points.length;
  const meanT = points.reduce((s, p) => s + p.t, 0) / n;
  const meanY = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - meanT) * (p.y - meanY);
    den += (p.t - meanT) ** 2;
  }
  return den === 0 ? null : num / den;
}

/** Binary units: a KiB is 1024 bytes, as PostgreSQL's pg_size_pretty and the WAL count them. */
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** The one byte formatter (reports, alerts, the status message). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}
