/** The parts that make one session cover every migrated database: lag combined per slot, fences proved together. */
import { describe, expect, it } from 'vitest';
import { combineReadings, EveryDatabaseFence } from '../../src/adapters/source/every-database.js';
import type { Fence, FenceResult } from '../../src/domain/ports/replication.js';
import { CodedError, ErrorCode } from '../../src/errors.js';

const at = new Date('2026-12-07T12:00:00Z');
const known = (bytes: number, seconds: number | null, slot: string) => ({
  sample: { known: true as const, at, slot, slotActive: true, bytes, seconds },
  walPosition: 1000,
});

describe('combineReadings', () => {
  it('one database: its reading as it is', () => {
    const reading = known(10, 0.1, 's1');
    expect(combineReadings([{ database: 'app', part: reading }])).toBe(reading);
  });

  it('several: the largest lag, each database listed', () => {
    const combined = combineReadings([
      { database: 'app', part: known(10, 0.1, 's1') },
      { database: 'app2', part: known(4096, 2, 's2') },
    ]);
    expect(combined.sample).toMatchObject({
      known: true,
      bytes: 4096,
      seconds: 2,
      slot: 's1, s2',
      databases: [
        { database: 'app', known: true, bytes: 10, seconds: 0.1 },
        { database: 'app2', known: true, bytes: 4096, seconds: 2 },
      ],
    });
  });

  it('unknown when any database is, naming it: unknown is never zero', () => {
    const combined = combineReadings([
      { database: 'app', part: known(0, 0, 's1') },
      { database: 'app2', part: { sample: { known: false, at, reason: 'no logical replication slot' }, walPosition: null } },
    ]);
    expect(combined.sample).toMatchObject({ known: false, reason: 'app2: no logical replication slot' });
  });
});

describe('EveryDatabaseFence', () => {
  const fence = (elapsedMs: number, fail = false): Fence => ({
    prove: async () => {
      await new Promise((r) => setTimeout(r, elapsedMs));
      if (fail) throw new CodedError(ErrorCode.FenceTimeout, 'timed out');
      return { method: 'marker', lsn: `0/${elapsedMs}`, elapsedMs } satisfies FenceResult;
    },
  });

  it('proves once every database proved, reporting the slowest and each', async () => {
    const result = await new EveryDatabaseFence([
      { database: 'app', part: fence(5) },
      { database: 'app2', part: fence(30) },
    ]).prove(1000);
    expect(result).toMatchObject({ lsn: '0/30', elapsedMs: 30 });
    expect(result.databases?.map((d) => d.database)).toEqual(['app', 'app2']);
  });

  it('fails when one database does not prove, after every fence ended', async () => {
    const error = await new EveryDatabaseFence([
      { database: 'app', part: fence(5, true) },
      { database: 'app2', part: fence(20) },
    ])
      .prove(1000)
      .catch((e: unknown) => e);
    expect((error as CodedError).code).toBe(ErrorCode.FenceTimeout);
  });
});
