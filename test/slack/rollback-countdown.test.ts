/**
 * The rollback window in the status message of a switched session that replicates back: how long a
 * rollback loses nothing, whether the reverse stream runs and the WAL it keeps; once the window has
 * ended, that a rollback leaves the target's writes there. The view reads the window only for a
 * switched session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderStatus, type StatusView } from '../../src/adapters/slack/blocks.js';
import { StatusMessages } from '../../src/adapters/slack/status-message.js';
import { ApprovalStore, ReportScheduleStore } from '../../src/adapters/store/approvals.js';
import { AuditLog } from '../../src/adapters/store/audit-log.js';
import { openEmbedded, type Database } from '../../src/adapters/store/database.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import type { RollbackWindowState } from '../../src/domain/rollback-window.js';
import type { Session } from '../../src/domain/session.js';
import { createLogger } from '../../src/log.js';

const NOW = new Date('2030-01-01T10:00:00Z');
const ENDS = new Date('2030-01-02T09:30:00Z');
const window = (over: Partial<RollbackWindowState> = {}): RollbackWindowState => ({
  attempt: 1,
  endsAt: ENDS,
  walOverBudget: false,
  notStreaming: { streak: 0, announced: false },
  reading: { at: NOW, slot: true, streaming: true, retainedWalBytes: 12 * 1024 * 1024 },
  endedAt: null,
  ...over,
});
const session: Session = {
  id: '0e0e0e0e-0000-4000-8000-000000000015',
  channelId: 'C0ROLL',
  profile: 'orders',
  strategy: 'proxy',
  state: 'switched',
  version: 5,
  doMigrationId: 'mig-1',
  startedBy: 'U0OPS',
  statusMessageTs: null,
  createdAt: new Date('2030-01-01T00:00:00Z'),
  updatedAt: new Date('2030-01-01T09:30:00Z'),
};
const rollbackField = (view: Partial<StatusView>) => {
  const { blocks } = renderStatus({ session, profile: undefined, requests: {}, now: NOW, ...view });
  const fields = (blocks[1] as { fields: { text: string }[] }).fields.map((f) => f.text);
  return fields.find((f) => f.startsWith('*Rollback*'));
};
const ends = '<!date^1893576600^{date_short_pretty} {time}|2030-01-02T09:30:00.000Z>';

describe('the rollback window in the status message', () => {
  it('counts down while replicating back, with the WAL the reverse slot keeps', () => {
    expect(rollbackField({ rollbackWindow: window() })).toBe(`*Rollback*\nwithout loss possible for 23 h more, until ${ends} (replicating back, 12.0 MiB retained)`);
    const late = { ...window(), reading: { at: NOW, slot: true, streaming: false, retainedWalBytes: null } };
    expect(rollbackField({ rollbackWindow: late, now: new Date('2030-01-02T09:00:00Z') })).toBe(
      `*Rollback*\nwithout loss possible for 30 min more, until ${ends} (replicating back, *not streaming*)`,
    );
  });

  it("says once the window has ended that a rollback leaves the target's writes there", () => {
    expect(rollbackField({ rollbackWindow: window({ endedAt: ENDS }) })).toBe(
      `*Rollback*\nwindow ended ${ends}: replicating back stopped, a rollback leaves the target's writes on the target`,
    );
  });

  it('shows nothing without a window (not replicating back, or not switched)', () => {
    expect(rollbackField({})).toBeUndefined();
    expect(rollbackField({ rollbackWindow: window(), session: { ...session, state: 'rolled_back' } })).toBeUndefined();
  });
});

describe('the status view', () => {
  let db: Database;
  let sessions: SessionStore;
  beforeAll(async () => {
    db = await openEmbedded(undefined);
    await migrate(db);
    sessions = new SessionStore(db);
  });
  afterAll(() => db?.close());

  it("reads a switched session's rollback window, and no other session's", async () => {
    const asked: string[] = [];
    const status = new StatusMessages({
      client: { chat: { postMessage: async () => ({ ok: true, ts: '1' }), update: async () => ({ ok: true }) } } as never,
      store: { db, sessions, audit: new AuditLog(db) },
      approvals: new ApprovalStore(db),
      schedules: new ReportScheduleStore(db),
      config: { profiles: new Map() } as never,
      log: createLogger('silent'),
      now: () => NOW,
      lag: async () => ({ known: false, at: NOW, reason: 'not measured here' }),
      rollbackWindow: async (sessionId) => {
        asked.push(sessionId);
        return window();
      },
    });
    const created = await sessions.create({ channelId: 'C0VIEW', profile: 'orders', strategy: 'proxy', startedBy: 'U0OPS' });
    const syncing = await sessions.transition(created.id, created.version, 'migration_started', { doMigrationId: 'm' });
    expect((await status.view(syncing)).rollbackWindow).toBeUndefined();
    const frozen = await sessions.transition(syncing.id, syncing.version, 'freeze');
    const switched = await sessions.transition(frozen.id, frozen.version, 'switch');
    expect((await status.view(switched)).rollbackWindow).toEqual(window());
    expect(asked).toEqual([switched.id]);
  });
});
