/**
 * Reverse replication over several databases is all or nothing, and one switch point serves every
 * slot: the latest of the positions read in the freeze (each still before the first application write).
 */
import { describe, expect, it } from 'vitest';
import { everyDatabaseReverse } from '../../src/adapters/replication/every-database-reverse.js';
import type { ReverseCapability, ReverseReplication } from '../../src/domain/ports/reverse-replication.js';

function part(name: string, options: { capable: boolean; lsn: string }) {
  const calls: string[] = [];
  const capability = (): ReverseCapability =>
    options.capable ? { ok: true, reasons: [], publication: 'table-list' } : { ok: false, reasons: ['wal_level is replica'], publication: null };
  const reverse: ReverseReplication = {
    capability: async () => capability(),
    prepare: async () => (calls.push('prepare'), capability()),
    establish: async () => ({ slot: `rev_${name}`, lsn: options.lsn, elapsedMs: 1 }),
    attach: async (from) => void calls.push(`attach ${from}`),
    status: async () => ({ slot: true, streaming: true, retainedWalBytes: 100, lagBytes: 10 }),
    rollback: {
      fence: { prove: async () => ({ method: 'marker', lsn: '0/1', elapsedMs: 3 }) },
      sequences: { copy: async () => ({ copied: 2, unused: 0, elapsedMs: 1 }) },
    },
    drop: async () => (calls.push('drop'), { subscriptions: 1, slots: 1, publications: 1 }),
    close: async () => undefined,
  };
  return { calls, reverse };
}

describe('reverse replication over every migrated database', () => {
  it('one database that cannot replicate back: none does, the others’ objects are removed, the reason names it', async () => {
    const a = part('app', { capable: true, lsn: '0/10' });
    const b = part('app2', { capable: false, lsn: '0/10' });
    const every = everyDatabaseReverse([{ database: 'app', part: a.reverse }, { database: 'app2', part: b.reverse }]);
    expect(await every.prepare()).toEqual({ ok: false, reasons: ['app2: wal_level is replica'], publication: null });
    expect(a.calls).toEqual(['prepare', 'drop']);
    expect(await every.capability()).toMatchObject({ ok: false, reasons: ['app2: wal_level is replica'] });
  });

  it('the latest position read in the freeze is every slot’s switch point; status and rollback add up', async () => {
    const a = part('app', { capable: true, lsn: '0/FFFFFFF0' });
    const b = part('app2', { capable: true, lsn: '1/00000010' });
    const every = everyDatabaseReverse([{ database: 'app', part: a.reverse }, { database: 'app2', part: b.reverse }]);
    expect(await every.prepare()).toEqual({ ok: true, reasons: [], publication: 'table-list' });
    const anchor = await every.establish();
    expect(anchor?.lsn).toBe('1/00000010');
    await every.attach(anchor!.lsn);
    expect(a.calls.at(-1)).toBe('attach 1/00000010');
    expect(b.calls.at(-1)).toBe('attach 1/00000010');
    expect(await every.status()).toEqual({ slot: true, streaming: true, retainedWalBytes: 200, lagBytes: 10 });
    expect(await every.rollback.sequences.copy()).toMatchObject({ copied: 4 });
    expect((await every.rollback.fence.prove(1000)).databases?.map((d) => d.database)).toEqual(['app', 'app2']);
    expect(await every.drop()).toEqual({ subscriptions: 2, slots: 2, publications: 2 });
  });
});
