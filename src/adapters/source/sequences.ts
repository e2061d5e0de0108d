/**
 * Sequence values are not replicated by logical replication: the bot sets each target sequence to the
 * source value plus a safety margin (in the sequence's direction, clamped to its bounds). pushAhead()
 * does it while syncing; the copy inside the freeze then reads the source (one statement) and sends
 * one target statement only for sequences the source has caught up with since, or none at all. The
 * source's read can ride along the fence's marker (`alongTheMarker`): the copy then sends nothing of
 * its own to the source.
 * Absolute setval, and never backward (a target already at or past the source is left), so running
 * either twice is harmless.
 */
import type pg from 'pg';
import type { SequenceCopier, SequenceCopyResult } from '../../domain/ports/sequences.js';
import { CodedError, ErrorCode } from '../../errors.js';
import type { ReadAlongTheMarker } from './fence.js';

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.Client, 'query'>;
/** A pool the copier may keep one connection of, from pushAhead() to the copy: nothing to open inside the freeze. */
type Holdable = Queryable & Partial<Pick<pg.Pool, 'connect'>>;

export interface SequenceState {
  schema: string;
  name: string;
  /** The last value handed out (text: bigint), or null when the sequence was never used. */
  lastValue: string | null;
  increment: string;
  minValue: string;
  maxValue: string;
  startValue: string;
}

interface SequenceRow {
  schemaname: string;
  sequencename: string;
  last_value: string | null;
  increment_by: string;
  min_value: string;
  max_value: string;
  start_value: string;
  readable: boolean;
}

/** Every sequence outside the system schemas: one statement without parameters (it is also sent inside another message). */
const SEQUENCES_SQL = `SELECT schemaname, sequencename, last_value::text, increment_by::text, min_value::text, max_value::text,
            start_value::text,
            has_sequence_privilege(format('%I.%I', schemaname, sequencename), 'SELECT') AS readable
       FROM pg_sequences
      WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
      ORDER BY schemaname, sequencename`;

export async function readSequences(source: Queryable): Promise<SequenceState[]> {
  return sequenceStates((await source.query<SequenceRow>(SEQUENCES_SQL)).rows);
}

function sequenceStates(rows: readonly SequenceRow[]): SequenceState[] {
  const unreadable = rows.filter((r) => !r.readable).map((r) => `${r.schemaname}.${r.sequencename}`);
  if (unreadable.length > 0) {
    throw new CodedError(
      ErrorCode.CutoverStepFailed,
      `The bot's source user cannot read ${unreadable.length} sequence(s) (${unreadable.slice(0, 5).join(', ')}${unreadable.length > 5 ? ', …' : ''}); grant SELECT on them or use a superuser.`,
      { details: { unreadable: unreadable.length } },
    );
  }
  return rows.map((r) => ({
    schema: r.schemaname,
    name: r.sequencename,
    lastValue: r.last_value,
    increment: r.increment_by,
    minValue: r.min_value,
    maxValue: r.max_value,
    startValue: r.start_value,
  }));
}

/** The value to set on the target: source value plus `margin` steps, within the sequence's bounds. */
export function targetValue(seq: SequenceState, margin: number): { value: bigint; isCalled: boolean } {
  if (seq.lastValue === null) return { value: BigInt(seq.startValue), isCalled: false };
  const increment = BigInt(seq.increment);
  const wanted = BigInt(seq.lastValue) + increment * BigInt(margin);
  const min = BigInt(seq.minValue);
  const max = BigInt(seq.maxValue);
  return { value: wanted > max ? max : wanted < min ? min : wanted, isCalled: true };
}

/** A sequence to move on the target: to `value` if its last value is behind `floor` (in its direction). */
interface Advance {
  seq: SequenceState;
  floor: bigint;
  value: bigint;
}

/**
 * One statement: every listed target sequence behind its floor (never called counts as behind) is set
 * to its value; the others are left as they are. Returns each one's last value afterwards.
 */
async function advanceSequences(target: Queryable, items: readonly Advance[]): Promise<{ lastValues: bigint[]; set: number }> {
  if (items.length === 0) return { lastValues: [], set: 0 };
  try {
    const { rows } = await target.query<{ last: string; behind: boolean }>(
      `SELECT CASE WHEN b.behind THEN setval(t.r, t.v, true) ELSE c.last END::text AS last, b.behind
         FROM (SELECT format('%I.%I', s, n)::regclass AS r, v, f, up, i
                 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::boolean[]) WITH ORDINALITY AS u(s, n, v, f, up, i)) t
        CROSS JOIN LATERAL (SELECT pg_sequence_last_value(t.r) AS last) c
        CROSS JOIN LATERAL (SELECT c.last IS NULL OR CASE WHEN t.up THEN c.last < t.f ELSE c.last > t.f END AS behind) b
        ORDER BY t.i`,
      [
        items.map((a) => a.seq.schema),
        items.map((a) => a.seq.name),
        items.map((a) => a.value.toString()),
        items.map((a) => a.floor.toString()),
        items.map((a) => BigInt(a.seq.increment) > 0n),
      ],
    );
    return { lastValues: rows.map((r) => BigInt(r.last)), set: rows.filter((r) => r.behind).length };
  } catch (error) {
    throw new CodedError(
      ErrorCode.CutoverStepFailed,
      `Setting the sequences on the target failed: ${(error as Error).message}`,
      { cause: error, details: { sequences: items.length } },
    );
  }
}

export interface SequencePushResult {
  /** Sequences used on the source (the others are left alone). */
  sequences: number;
  /** Target sequences that were behind source + margin and were set. */
  pushed: number;
  elapsedMs: number;
}

/** The copier the engine uses, plus pushAhead() for before the freeze. */
export interface SequencePusher extends SequenceCopier {
  /** The source's read inside the freeze, for the fence to send along its marker (see ReadAlongTheMarker). */
  readonly alongTheMarker?: ReadAlongTheMarker;
  /** Sets every target sequence behind source + margin to source + margin. Call while syncing, before the freeze. */
  pushAhead(): Promise<SequencePushResult>;
  /** Inside the freeze: SequenceCopyResult plus how many target sequences had to be set (0: no target statement sent). */
  copy(): Promise<SequenceCopyResult & { set: number }>;
  close(): Promise<void>;
}

/**
 * The copier on the bot's own connections to source and target. It remembers the target values it set
 * or saw, so the copy inside the freeze skips the target when every one is still at or past the
 * source: trusted because nothing but the bot sets sequences on the target before the switch
 * (logical replication never does), and a target that moved on its own only moved forward.
 */
export function sequenceCopier(options: { source: Holdable; target: Holdable; margin: number }): SequencePusher {
  const known = new Map<string, bigint>();
  let held: { source: pg.PoolClient; target: pg.PoolClient; broken: boolean } | undefined;
  // A checked-out client's error event needs a listener (else it crashes the process); a broken one is not reused.
  const onError = () => {
    if (held) held.broken = true;
  };
  const release = () => {
    for (const client of held ? [held.source, held.target] : []) {
      client.off('error', onError);
      client.release(held?.broken ? true : undefined);
    }
    held = undefined;
  };
  const keep = async () => {
    if (held || !options.source.connect || !options.target.connect) return;
    const [source, target] = await Promise.all([options.source.connect(), options.target.connect()]);
    for (const client of [source, target]) client.on('error', onError);
    held = { source, target, broken: false };
  };
  // The rows the fence's proof under way reads along its marker: the copy takes them instead of reading.
  let along: Promise<readonly SequenceRow[] | undefined> | undefined;
  const alongTheMarker: ReadAlongTheMarker = {
    sql: SEQUENCES_SQL,
    arm() {
      let settle!: (rows: readonly SequenceRow[] | undefined) => void;
      along = new Promise((resolve) => (settle = resolve));
      // Only the first outcome counts (a promise resolves once): the proof settles it failed when it ends anyway.
      return (outcome) => settle('rows' in outcome ? (outcome.rows as SequenceRow[]) : undefined);
    },
  };
  const keyOf = (s: SequenceState) => JSON.stringify([s.schema, s.name]);
  const remember = (items: readonly Advance[], lastValues: readonly bigint[]) =>
    items.forEach((a, i) => known.set(keyOf(a.seq), lastValues[i] ?? a.value));
  return {
    alongTheMarker,
    async pushAhead() {
      const started = performance.now();
      // Before a freeze: a read left from an earlier one is not this freeze's.
      along = undefined;
      const sequences = (await readSequences(options.source)).filter((s) => s.lastValue !== null);
      const items = sequences.map((seq) => {
        const { value } = targetValue(seq, options.margin);
        return { seq, floor: value, value };
      });
      const { lastValues, set } = await advanceSequences(options.target, items);
      remember(items, lastValues);
      await keep();
      return { sequences: sequences.length, pushed: set, elapsedMs: Math.round(performance.now() - started) };
    },
    async close() {
      release();
    },
    async copy() {
      const started = performance.now();
      const on = held ?? options;
      try {
        return await copyOn(on.source, on.target, started);
      } finally {
        release();
      }
    },
  };

  /** Inside the freeze: the source read along the marker (else one source statement), and a target statement only for sequences behind. */
  async function copyOn(source: Queryable, target: Queryable, started: number) {
    const alongside = along;
    along = undefined;
    // The marker's message failed or carried no read: read here (the proof fails anyway if the source is gone).
    const rows = alongside && (await alongside);
    const sequences = rows ? sequenceStates(rows) : await readSequences(source);
    const behind = sequences.filter((seq) => {
      if (seq.lastValue === null) return false;
      const last = known.get(keyOf(seq));
      const onSource = BigInt(seq.lastValue);
      return last === undefined || (BigInt(seq.increment) > 0n ? last < onSource : last > onSource);
    });
    const items = behind.map((seq) => ({ seq, floor: BigInt(seq.lastValue ?? 0), value: targetValue(seq, options.margin).value }));
    const { lastValues, set } = await advanceSequences(target, items);
    remember(items, lastValues);
    return {
      copied: sequences.filter((s) => s.lastValue !== null).length,
      unused: sequences.filter((s) => s.lastValue === null).length,
      set,
      elapsedMs: Math.round(performance.now() - started),
    };
  }
}
