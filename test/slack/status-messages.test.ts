/**
 * The status message on the embedded store with a recording Slack client: `/migrate status` builds
 * one view per request and the channel's message gets coalesced updates, never an older render after
 * a newer one; a report's refresh shows the report's own figures (no measurement of its own) and
 * DigitalOcean's status as seen; what is remembered of a session goes when it ends. Also: the report
 * poster's per-channel pacing forgets channels that went quiet.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as blocks from '../../src/adapters/slack/blocks.js';
import { ChannelPacer } from '../../src/adapters/slack/report-poster.js';
import { StatusMessages } from '../../src/adapters/slack/status-message.js';
import { SharedLagProbe } from '../../src/adapters/source/source-registry.js';
import { ApprovalStore, ReportScheduleStore } from '../../src/adapters/store/approvals.js';
import { AuditLog } from '../../src/adapters/store/audit-log.js';
import { openEmbedded, type Database } from '../../src/adapters/store/database.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import { parseProfiles } from '../../src/config/profiles.js';
import type { LagSample } from '../../src/domain/ports/replication.js';
import { formatBytes } from '../../src/domain/report.js';
import type { Session } from '../../src/domain/session.js';
import { createLogger } from '../../src/log.js';
import type { StatusFigures } from '../../src/reports/ports.js';

const config = parseProfiles(
  `
profiles:
  orders:
    channels: [C0STATUS1]
    strategy: connection-parameters
    source: { host: 127.0.0.1, database: orders, user: migrator, password: "\${PW}" }
    digitalocean: { clusterUuid: 9cc10173-e9ea-4176-9dbc-a4cee4c4ff30, database: orders }
    proxy: { kind: none }
    freeze: { method: read-only-database }
    gates: { operators: [U0OPS], approvers: [U0APP] }
`,
  'status-test.yml',
  { PW: 'not-a-real-password' },
);

let db: Database;
let sessions: SessionStore;
let channel = 0;
beforeAll(async () => {
  db = await openEmbedded(undefined);
  await migrate(db);
  sessions = new SessionStore(db);
});
afterAll(() => db?.close());

interface Update {
  ts: string;
  text: string;
  blocks: string;
}

function statusRig(lag: (session: Session) => Promise<LagSample>) {
  const updates: Update[] = [];
  const client = {
    chat: {
      postMessage: async () => ({ ok: true, ts: '1700000000.000001' }),
      update: async (args: { ts: string; text?: string; blocks?: unknown }) => {
        // A Slack round trip: long enough for concurrent renders to pile up behind it.
        await new Promise((r) => setTimeout(r, 5));
        updates.push({ ts: args.ts, text: args.text ?? '', blocks: JSON.stringify(args.blocks) });
        return { ok: true };
      },
    },
  };
  const status = new StatusMessages({
    client: client as never,
    store: { db, sessions, audit: new AuditLog(db) },
    approvals: new ApprovalStore(db),
    schedules: new ReportScheduleStore(db),
    config,
    log: createLogger('silent'),
    now: () => new Date(),
    lag,
  });
  return { status, updates };
}

async function syncingSession(): Promise<Session> {
  const created = await sessions.create({ channelId: `C0STAT${channel++}`, profile: 'orders', strategy: 'connection-parameters', startedBy: 'U0OPS' });
  const syncing = await sessions.transition(created.id, created.version, 'migration_started', { doMigrationId: 'do-mig-7' });
  return sessions.setStatusMessage(syncing.id, '1700000000.000001');
}

const known = (bytes: number, at = new Date()): LagSample => ({ known: true, at, slot: 'do_slot', slotActive: true, bytes, seconds: 1.5 });

/** Waits until the message has had `n` updates and no more arrive for a while. */
async function settled(updates: Update[], n: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (updates.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 50));
}

describe('the status message', () => {
  it('answers twenty concurrent /migrate status from one lag reading and coalesces the channel updates', async () => {
    let reads = 0;
    const probe = new SharedLagProbe(
      {
        read: async () => {
          reads++;
          await new Promise((r) => setTimeout(r, 20));
          return { sample: known(1536), walPosition: null };
        },
      },
      1000,
      () => new Date(),
    );
    const { status, updates } = statusRig(() => probe.measure());
    const session = await syncingSession();
    const answers = await Promise.all(Array.from({ length: 20 }, () => status.show(session.channelId)));
    expect(reads).toBe(1);
    expect(answers.every((a) => JSON.stringify(a?.blocks).includes('1.5 KiB'))).toBe(true);
    expect(answers[0]?.text).toContain('syncing (online migration started)');
    await settled(updates, 1);
    // The first render goes out at once; the other nineteen wait behind it and only the newest follows.
    expect(updates.length).toBeGreaterThanOrEqual(1);
    expect(updates.length).toBeLessThanOrEqual(2);
    expect(updates.at(-1)?.blocks).toContain('1.5 KiB');
  });

  it('never lands an older render after a newer one', async () => {
    let release: ((sample: LagSample) => void) | undefined;
    const { status, updates } = statusRig(() => new Promise<LagSample>((resolve) => (release = resolve)));
    const session = await syncingSession();
    // A status request whose lag reading hangs…
    const slow = status.show(session.channelId);
    await new Promise((r) => setTimeout(r, 20));
    // …while the session changes and a refresh (with a report's figures, no reading) goes out.
    const frozen = await sessions.transition(session.id, session.version, 'freeze');
    const figures: StatusFigures = { lag: known(2048), lagTrend: 'falling', doView: { known: true, status: 'running', id: 'do-mig-7', createdAt: new Date() } };
    await status.refresh(frozen.id, figures);
    release?.(known(4096));
    const answer = await slow;
    expect(answer?.text).toContain('syncing');
    await settled(updates, 1);
    expect(updates).toHaveLength(1);
    expect(updates[0]?.text).toContain('writes frozen');
  });

  it("shows a report's figures without measuring, DigitalOcean's status as seen, and forgets it when the session ends", async () => {
    let reads = 0;
    const { status, updates } = statusRig(async () => {
      reads++;
      return known(1024);
    });
    const session = await syncingSession();
    const seenAt = new Date();
    await status.refresh(session.id, { lag: known(5 * 1024 * 1024, seenAt), lagTrend: 'rising', doView: { known: true, status: 'running', id: 'do-mig-7', createdAt: new Date() } });
    expect(reads).toBe(0);
    const shown = updates.at(-1)!;
    expect(shown.blocks).toContain(`${formatBytes(5 * 1024 * 1024)}, ~1.5 s ↗ rising`);
    expect(shown.blocks).toContain('`do-mig-7` (DigitalOcean: running, <!date^');
    expect(shown.text).not.toContain('DigitalOcean is replicating');
    // A later plain refresh measures for itself and still shows what DigitalOcean was last seen saying.
    await status.refresh(session.id);
    expect(reads).toBe(1);
    expect(updates.at(-1)?.blocks).toContain('DigitalOcean: running');
    // Once the session has ended nothing of it is remembered: just the migration id.
    await sessions.transition(session.id, (await sessions.require(session.id)).version, 'abort');
    await status.refresh(session.id);
    expect(updates.at(-1)?.blocks).toContain('`do-mig-7`');
    expect(updates.at(-1)?.blocks).not.toContain('DigitalOcean: running');
  });

  it('formats bytes one way: the domain formatter, binary units, also in the status message', () => {
    expect('formatBytes' in blocks).toBe(false);
    expect(formatBytes(4096)).toBe('4.0 KiB');
    expect(blocks.describeLag(known(4096))).toBe(`${formatBytes(4096)}, ~1.5 s`);
  });
});

describe('per-channel pacing of report posts', () => {
  it('keeps the gap between posts to a channel and forgets the channel once it has passed', async () => {
    const pacer = new ChannelPacer(30);
    const starts: number[] = [];
    await Promise.all([1, 2, 3].map(() => pacer.run('C1', async () => void starts.push(Date.now()))));
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(28);
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(28);
    expect(pacer.size).toBe(1);
    await new Promise((r) => setTimeout(r, 60));
    expect(pacer.size).toBe(0);
  });
});

describe('the gate lines of the status message', () => {
  const session: Session = {
    id: '0e0e0e0e-0000-4000-8000-000000000001',
    channelId: 'C0GATES',
    profile: 'orders',
    strategy: 'proxy',
    state: 'syncing',
    version: 3,
    doMigrationId: 'mig-1',
    startedBy: 'U0OPS',
    statusMessageTs: null,
    createdAt: new Date('2030-01-01T00:00:00Z'),
    updatedAt: new Date('2030-01-01T00:00:00Z'),
  };
  const request = (replicatesBack?: boolean) => ({
    id: 'g1',
    sessionId: session.id,
    gate: 'freeze' as const,
    status: 'pending' as const,
    requestedBy: 'U0OPS',
    requestedAt: new Date('2030-01-01T00:00:00Z'),
    requestExpiresAt: new Date('2030-01-01T00:15:00Z'),
    approvedBy: null,
    approvedAt: null,
    approvalExpiresAt: null,
    closedAt: null,
    binding: { planHash: 'abcdef0123456789', lagBytes: 2048, sourceLsn: '0/1', predictedFreezeMs: 42, ...(replicatesBack === undefined ? {} : { replicatesBack }) },
  });
  const text = (replicatesBack?: boolean) =>
    JSON.stringify(blocks.renderStatus({ session, profile: undefined, requests: { freeze: request(replicatesBack) }, now: new Date('2030-01-01T00:01:00Z') }).blocks);

  it('say what a rollback would do, as the approval was given: nothing lost when replicating back, else the target keeps its writes', () => {
    expect(text(true)).toContain('predicted freeze ≈ 42 ms, lag then 2.0 KiB; a rollback loses nothing (replicating back)');
    expect(text(false)).toContain("a rollback would leave the target's writes on the target (not replicating back)");
    expect(text(undefined)).not.toContain('rollback');
  });
});
