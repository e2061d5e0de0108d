/**
 * Reverse replication over every migrated database: one slot, publication and subscription per
 * database (a logical slot belongs to one database), set up, attached, fenced and dropped together,
 * behind the engine's one port. It is all or nothing: where one database cannot replicate back, none
 * does (a rollback that brings back some databases' writes and not others' would be worse than one the
 * channel was told loses them). One switch point serves every slot: each database's WAL position is
 * read inside the freeze, and the latest of them is still before the first application write.
 */
import type { ReverseAnchor, ReverseCapability, ReverseDropResult, ReverseReplication, ReverseStatus } from '../../domain/ports/reverse-replication.js';
import type { SequenceCopyResult } from '../../domain/ports/sequences.js';
import { settleAll } from '../settle-all.js';
import { EveryDatabaseFence, latestLsn, type DatabasePart } from '../source/every-database.js';

export function everyDatabaseReverse(parts: readonly DatabasePart<ReverseReplication>[]): ReverseReplication {
  const [only] = parts;
  if (only && parts.length === 1) return only.part;
  const named = (database: string, reasons: string[]) => reasons.map((r) => `${database}: ${r}`);
  const capabilities = async (work: (r: ReverseReplication) => Promise<ReverseCapability>) =>
    settleAll(parts, async ({ database, part }) => ({ database, capability: await work(part) }));
  const combine = (all: { database: string; capability: ReverseCapability }[]): ReverseCapability => {
    const reasons = all.flatMap(({ database, capability }) => named(database, capability.reasons));
    if (reasons.length > 0) return { ok: false, reasons, publication: null };
    return { ok: true, reasons: [], publication: all.every((c) => c.capability.publication === 'all-tables') ? 'all-tables' : 'table-list' };
  };
  const drop = async (): Promise<ReverseDropResult> => {
    const results = await settleAll(parts, ({ part }) => part.drop());
    return {
      subscriptions: results.reduce((n, r) => n + r.subscriptions, 0),
      slots: results.reduce((n, r) => n + r.slots, 0),
      publications: results.reduce((n, r) => n + r.publications, 0),
    };
  };
  return {
    capability: async () => combine(await capabilities((r) => r.capability())),
    async prepare() {
      const combined = combine(await capabilities((r) => r.prepare()));
      // All or nothing: what the databases that could prepared is removed again.
      if (!combined.ok) await drop();
      return combined;
    },
    async establish(proven): Promise<ReverseAnchor | null> {
      const anchors = await settleAll(parts, ({ part }) => part.establish(proven));
      if (anchors.some((a) => a === null)) return null;
      const present = anchors as ReverseAnchor[];
      const lsn = latestLsn(present.map((a) => a.lsn)) as string;
      return { slot: present.map((a) => a.slot).join(', '), lsn, elapsedMs: Math.max(...present.map((a) => a.elapsedMs)) };
    },
    async attach(from) {
      await settleAll(parts, ({ part }) => part.attach(from));
    },
    async status(): Promise<ReverseStatus> {
      const all = await settleAll(parts, ({ part }) => part.status());
      const sum = (values: (number | null)[]) => (values.some((v) => v === null) ? null : (values as number[]).reduce((a, b) => a + b, 0));
      return {
        slot: all.every((s) => s.slot),
        streaming: all.every((s) => s.streaming),
        retainedWalBytes: sum(all.map((s) => s.retainedWalBytes)),
        lagBytes: all.some((s) => s.lagBytes === null) ? null : Math.max(...all.map((s) => s.lagBytes as number)),
      };
    },
    rollback: {
      fence: new EveryDatabaseFence(parts.map(({ database, part }) => ({ database, part: part.rollback.fence }))),
      sequences: {
        async copy(): Promise<SequenceCopyResult> {
          const t = performance.now();
          const results = await settleAll(parts, ({ part }) => part.rollback.sequences.copy());
          return { copied: results.reduce((n, r) => n + r.copied, 0), unused: results.reduce((n, r) => n + r.unused, 0), elapsedMs: Math.round(performance.now() - t) };
        },
      },
    },
    drop,
    async close() {
      await Promise.all(parts.map(({ part }) => part.close().catch(() => undefined)));
    },
  };
}
