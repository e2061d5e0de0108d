/**
 * Sequence values are not replicated by logical replication: during the freeze the bot reads every
 * sequence on the source and sets it on the target to the source value plus a safety margin (in the
 * sequence's direction, clamped to its bounds). Absolute setval, so running it twice is harmless.
 * One round trip on each side, so thousands of sequences stay within the freeze budget.
 */
import type pg from 'pg';
import type { SequenceCopier } from '../../domain/ports/sequences.js';
import { CodedError, ErrorCode } from '../../errors.js';

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.Client, 'query'>;

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

const SYSTEM_SCHEMAS = ['pg_catalog', 'information_schema'];

export async function readSequences(source: Queryable): Promise<SequenceState[]> {
  const { rows } = await source.query<SequenceRow>(
    `SELECT schemaname, sequencename, last_value::text, increment_by::text, min_value::text, max_value::text,
            start_value::text,
            has_sequence_privilege(format('%I.%I', schemaname, sequencename), 'SELECT') AS readable
       FROM pg_sequences
      WHERE schemaname <> ALL ($1::text[])
      ORDER BY schemaname, sequencename`,
    [SYSTEM_SCHEMAS],
  );
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

export async function applySequences(target: Queryable, sequences: readonly SequenceState[], margin: number): Promise<void> {
  if (sequences.length === 0) return;
  const values = sequences.map((s) => targetValue(s, margin));
  try {
    await target.query(
      `SELECT count(setval(format('%I.%I', s, n)::regclass, v, c))
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::boolean[]) AS t(s, n, v, c)`,
      [
        sequences.map((s) => s.schema),
        sequences.map((s) => s.name),
        values.map((v) => v.value.toString()),
        values.map((v) => v.isCalled),
      ],
    );
  } catch (error) {
    throw new CodedError(
      ErrorCode.CutoverStepFailed,
      `Setting the sequences on the target failed: ${(error as Error).message}`,
      { cause: error, details: { sequences: sequences.length } },
    );
  }
}

/** The copier the engine uses, on the bot's own connections to source and target. */
export function sequenceCopier(options: { source: Queryable; target: Queryable; margin: number }): SequenceCopier {
  return {
    async copy() {
      const started = performance.now();
      const sequences = await readSequences(options.source);
      await applySequences(options.target, sequences, options.margin);
      return {
        copied: sequences.filter((s) => s.lastValue !== null).length,
        unused: sequences.filter((s) => s.lastValue === null).length,
        elapsedMs: Math.round(performance.now() - started),
      };
    },
  };
}
