/**
 * Which cutover replicates back, read from the journal: its `replicate_back` done with replication on.
 * The rollback window's profile settings, as the example documents them.
 */
import { describe, expect, it } from 'vitest';
import { loadProfiles } from '../../src/config/profiles.js';
import type { JournalEntry } from '../../src/domain/cutover-plan.js';
import { replicatingBack, ROLLBACK_DEFAULTS } from '../../src/domain/rollback-window.js';

const AT = new Date('2030-01-01T00:00:00Z');
const entry = (attempt: number, kind: JournalEntry['kind'], step: JournalEntry['step'], event: JournalEntry['event'], detail?: Record<string, unknown>): JournalEntry => ({
  attempt,
  kind,
  step,
  event,
  at: AT,
  ...(detail ? { detail } : {}),
});
const cutover = { attempt: 1, switchedAt: AT };
const switched = [entry(1, 'cutover', 'resume_target', 'done'), entry(1, 'cutover', 'replicate_back', 'started')];

describe('replicating back, as the journal says', () => {
  it('is the switched cutover whose replicate_back is done with replication on', () => {
    expect(replicatingBack([...switched, entry(1, 'cutover', 'replicate_back', 'done', { replicateBack: 'on', from: '0/1' })], cutover)).toEqual(cutover);
  });

  it('is not when replication back was off, failed or is still under way, or the cutover did not switch', () => {
    expect(replicatingBack([...switched, entry(1, 'cutover', 'replicate_back', 'done', { replicateBack: 'off' })], cutover)).toBeUndefined();
    expect(replicatingBack([...switched, entry(1, 'cutover', 'replicate_back', 'failed')], cutover)).toBeUndefined();
    expect(replicatingBack(switched, cutover)).toBeUndefined();
    const on = entry(1, 'cutover', 'replicate_back', 'done', { replicateBack: 'on' });
    expect(replicatingBack([on], { attempt: 1, switchedAt: null })).toBeUndefined();
  });

  it('still is after a rollback that failed (the session stays switched, the reverse replication in place)', () => {
    const on = [...switched, entry(1, 'cutover', 'replicate_back', 'done', { replicateBack: 'on' })];
    expect(replicatingBack([...on, entry(2, 'rollback', 'rollback_fence', 'failed')], cutover)).toEqual(cutover);
  });
});

describe("the rollback window's profile settings", () => {
  it('default to a day and 1 GiB of retained WAL, as the example documents them', () => {
    const example = new URL('../../pgcutover.example.yml', import.meta.url).pathname;
    const env = { ORDERS_SOURCE_PASSWORD: 'a', PGBOUNCER_ADMIN_PASSWORD: 'b', CATALOG_SOURCE_PASSWORD: 'c', ORDERS_APP_PASSWORD: 'd' };
    const profiles = loadProfiles(example, env).profiles;
    expect(profiles.get('orders')?.rollback).toEqual({ withoutReplicatingBack: 'refuse', ...ROLLBACK_DEFAULTS });
    // A profile that names none gets the defaults too.
    expect(profiles.get('catalog')?.rollback).toEqual({ withoutReplicatingBack: 'refuse', ...ROLLBACK_DEFAULTS });
  });
});
