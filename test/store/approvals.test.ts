import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApprovalStore, IdempotencyStore, ReportScheduleStore } from '../../src/adapters/store/approvals.js';
import { openEmbedded, type Database } from '../../src/adapters/store/database.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { ReportStateStore } from '../../src/adapters/store/report-state.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';

let db: Database;
let sessions: SessionStore;
let approvals: ApprovalStore;
const t0 = new Date('2026-01-01T10:00:00Z');
const at = (minutes: number) => new Date(t0.getTime() + minutes * 60_000);
let channel = 0;

beforeAll(async () => {
  db = await openEmbedded(undefined);
  await migrate(db);
  sessions = new SessionStore(db);
  approvals = new ApprovalStore(db);
});
afterAll(async () => {
  await db?.close();
});

const newSession = () => sessions.create({ channelId: `C0APPR${channel++}`, profile: 'orders', strategy: 'proxy', startedBy: 'UALICE' });

describe('ApprovalStore', () => {
  it('records a request, an approval with its expiry, and answers the engine query by the clock', async () => {
    const s = await newSession();
    const req = await approvals.request({ sessionId: s.id, gate: 'switch', requestedBy: 'UALICE', now: t0, expiryMinutes: 15 });
    expect(req).toMatchObject({ status: 'pending', requestedBy: 'UALICE', requestExpiresAt: at(15) });
    expect(await approvals.validApproval(s.id, 'switch', t0)).toBeUndefined();
    const approved = await approvals.approve(req.id, { approvedBy: 'UCAROL', now: at(5), expiryMinutes: 15 });
    expect(approved).toMatchObject({ status: 'approved', approvedBy: 'UCAROL', approvalExpiresAt: at(20) });
    expect((await approvals.validApproval(s.id, 'switch', at(19)))?.id).toBe(req.id);
    expect(await approvals.validApproval(s.id, 'switch', at(20))).toBeUndefined();
    expect(await approvals.validApproval(s.id, 'freeze', at(6))).toBeUndefined();
    expect((await approvals.open(s.id)).switch?.id).toBe(req.id);
  });

  it('allows one open request per gate, and a new one once the old expired', async () => {
    const s = await newSession();
    await approvals.request({ sessionId: s.id, gate: 'freeze', requestedBy: 'UALICE', now: t0, expiryMinutes: 15 });
    await expect(approvals.request({ sessionId: s.id, gate: 'freeze', requestedBy: 'UBOB', now: at(1), expiryMinutes: 15 })).rejects.toMatchObject({
      code: 'gate_refused',
    });
    const second = await approvals.request({ sessionId: s.id, gate: 'freeze', requestedBy: 'UBOB', now: at(16), expiryMinutes: 15 });
    expect(second.requestedBy).toBe('UBOB');
    const all = await approvals.forSession(s.id);
    expect(all.map((r) => r.status)).toEqual(['expired', 'pending']);
  });

  it('refuses approving an expired or already approved request', async () => {
    const s = await newSession();
    const req = await approvals.request({ sessionId: s.id, gate: 'freeze', requestedBy: 'UALICE', now: t0, expiryMinutes: 15 });
    await expect(approvals.approve(req.id, { approvedBy: 'UBOB', now: at(15), expiryMinutes: 15 })).rejects.toMatchObject({ code: 'gate_refused' });
    await approvals.approve(req.id, { approvedBy: 'UBOB', now: at(14), expiryMinutes: 15 });
    await expect(approvals.approve(req.id, { approvedBy: 'UCAROL', now: at(14), expiryMinutes: 15 })).rejects.toMatchObject({ code: 'gate_refused' });
  });

  it('lets exactly one of two callers close an approval as executed', async () => {
    const s = await newSession();
    const req = await approvals.request({ sessionId: s.id, gate: 'switch', requestedBy: 'UALICE', now: t0, expiryMinutes: 15 });
    await approvals.approve(req.id, { approvedBy: 'UCAROL', now: t0, expiryMinutes: 15 });
    const [a, b] = await Promise.all([approvals.close(req.id, 'executed', at(1)), approvals.close(req.id, 'executed', at(1))]);
    expect([a, b].filter(Boolean)).toHaveLength(1);
    expect((await approvals.latest(s.id, 'switch'))?.status).toBe('executed');
    expect(await approvals.close(req.id, 'withdrawn', at(2))).toBeUndefined();
  });
});

describe('IdempotencyStore', () => {
  it('claims a key once, or once per window', async () => {
    const keys = new IdempotencyStore(db);
    expect(await keys.claim('action:x', t0)).toBe(true);
    expect(await keys.claim('action:x', at(60 * 24))).toBe(false);
    expect(await keys.exists('action:x')).toBe(true);
    await keys.release('action:x');
    expect(await keys.claim('action:x', t0)).toBe(true);

    expect(await keys.claim('command:y', t0, 30_000)).toBe(true);
    expect(await keys.claim('command:y', new Date(t0.getTime() + 10_000), 30_000)).toBe(false);
    expect(await keys.claim('command:y', new Date(t0.getTime() + 31_000), 30_000)).toBe(true);
    const results = await Promise.all(Array.from({ length: 10 }, () => keys.claim('action:z', t0)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await keys.prune(at(60))).toBeGreaterThan(0);
  });
});

describe('ReportScheduleStore', () => {
  it('stores the per-session schedule', async () => {
    const s = await newSession();
    const schedules = new ReportScheduleStore(db);
    expect(await schedules.get(s.id)).toBeNull();
    await schedules.set(s.id, { kind: 'interval', seconds: 600, text: 'every 10m' }, 'UALICE', t0);
    expect(await schedules.get(s.id)).toBe('every 10m');
    // Where the reporter reads it.
    expect((await new ReportStateStore(db).schedule(s.id))?.setBy).toBe('UALICE');
  });
});
