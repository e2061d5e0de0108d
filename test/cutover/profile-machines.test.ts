/**
 * The production machines factory on a real cluster: an in-database freeze (read-only-roles) whose
 * record is persisted in the cutover journal before anything changes, a bot that dies while writes are
 * frozen, and a fresh process whose engine recovers from the journal and gives LOGIN back to exactly
 * the roles that had it (a member of an application role is locked out with it), not approximately.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProfiles } from '../../src/config/profiles.js';
import { CutoverEngine } from '../../src/app/cutover/engine.js';
import { ProfileMachines } from '../../src/adapters/session-machines.js';
import { factLine } from '../../src/adapters/slack/texts.js';
import { FactRecorder } from '../../src/app/facts.js';
import { StepRunner } from '../../src/app/cutover/runner.js';
import type { Session } from '../../src/domain/session.js';
import { DigitalOceanClient } from '../../src/adapters/digitalocean/digitalocean-client.js';
import { InDatabaseFreeze } from '../../src/adapters/proxy/in-database-freeze.js';
import { Secret } from '../../src/secret.js';
import { ApprovalStore } from '../../src/adapters/store/approvals.js';
import { AuditLog } from '../../src/adapters/store/audit-log.js';
import { CutoverJournal } from '../../src/adapters/store/cutover-journal.js';
import { openPostgres, type Database } from '../../src/adapters/store/database.js';
import { migrate } from '../../src/adapters/store/migrate.js';
import { SessionStore } from '../../src/adapters/store/session-store.js';
import { captureLogger } from '../support/capture-log.js';
import { freePort } from '../support/free-port.js';
import { startCluster, type Cluster } from '../support/pg-cluster.js';

const APP_PASSWORD = 'app-role-password';

describe('ProfileMachines: the in-database freeze record survives a crash', () => {
  const { logger, output } = captureLogger('debug');
  let cluster: Cluster;
  let db: Database;
  let session: Session;
  const notes: string[] = [];

  const canLogin = async (role: string) =>
    (await cluster.query<{ rolcanlogin: boolean }>('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [role]))[0]?.rolcanlogin;
  const writeAs = async (role: string, id: string) => {
    const client = new pg.Client({ host: cluster.host, port: cluster.port, user: role, password: APP_PASSWORD, database: 'orders' });
    client.on('error', () => undefined);
    await client.connect();
    try {
      await client.query('INSERT INTO items (id) VALUES ($1)', [id]);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    cluster = await startCluster({ databases: ['orders', 'store'] });
    await cluster.query(
      `CREATE ROLE app_main LOGIN PASSWORD '${APP_PASSWORD}';
       CREATE ROLE app_batch NOLOGIN;
       CREATE ROLE app_batch_worker LOGIN PASSWORD '${APP_PASSWORD}' IN ROLE app_batch;`,
    );
    await cluster.query('CREATE TABLE items (id text PRIMARY KEY); GRANT INSERT ON items TO app_main, app_batch', [], 'orders');
    db = openPostgres(new Secret(cluster.connectionString('store')), logger);
    await migrate(db);
    const sessions = new SessionStore(db);
    session = await sessions.create({ channelId: 'C0CATALOG', profile: 'catalog', strategy: 'connection-parameters', startedBy: 'U0ALICE' });
    session = await sessions.transition(session.id, session.version, 'migration_started', { doMigrationId: 'do-mig-1' });
  }, 120_000);

  afterAll(async () => {
    await db?.close().catch(() => undefined);
    await cluster?.stop();
  });

  const factory = async () => {
    const config = parseProfiles(
      `profiles:
  catalog:
    channels: [C0CATALOG]
    strategy: connection-parameters
    source: { host: ${cluster.host}, port: ${cluster.port}, database: orders, user: ${cluster.user}, password: "\${SOURCE_PW}" }
    digitalocean: { clusterUuid: 5f1d3c2e-7a8b-4c9d-8e0f-1a2b3c4d5e6f, database: orders }
    proxy: { kind: none }
    freeze: { method: read-only-roles, appRoles: [app_main, app_batch] }
    gates: { operators: [U0ALICE] }
`,
      'profiles.yml',
      { SOURCE_PW: cluster.password },
    );
    // Nothing on this path talks to DigitalOcean: the client points at a closed port.
    const doApi = new DigitalOceanClient({ token: new Secret('dop_v1_unused'), baseUrl: `http://127.0.0.1:${await freePort()}`, logger });
    return new ProfileMachines({
      config,
      env: { DIGITALOCEAN_TOKEN: new Secret('dop_v1_unused'), DIGITALOCEAN_API_URL: 'http://127.0.0.1:9' },
      journal: new CutoverJournal(db),
      log: logger,
      doApi,
    });
  };

  it('persists the record before freezing, and a new process gives LOGIN back exactly', async () => {
    const journal = new CutoverJournal(db);
    const sessions = new SessionStore(db);
    await writeAs('app_main', 'before');

    // Process 1: the engine has opened the attempt; the freeze step runs and the process dies.
    const first = await factory();
    const attempt = await journal.begin(session.id, 'cutover', 'U0ALICE');
    const machines = await first.machines(session);
    expect(machines.routing).toBeUndefined();
    expect(machines.frozenWhat).toEqual({ method: 'read-only-roles', via: 'database', database: 'orders', roles: ['app_main', 'app_batch'] });
    // This rig has no target (DigitalOcean is not reachable), so the freeze runs without the fence's
    // catch-up just before it, which needs the target; the freeze itself is what is tested here.
    const withoutCatchUp = { ...machines, fence: { prove: (timeoutMs: number) => machines.fence.prove(timeoutMs) } };
    await new StepRunner(journal, { now: () => new Date(), setTimer: () => ({ cancel: () => undefined }) }).run(
      { session, attempt, machines: withoutCatchUp, remainingMs: () => Number.POSITIVE_INFINITY },
      ['freeze'],
    );
    session = await sessions.transition(session.id, session.version, 'freeze');
    const persisted = (await journal.attempt(session.id, attempt))?.freezeRecord;
    expect(persisted).toMatchObject({
      method: 'read-only-roles',
      database: 'orders',
      locked: [
        { role: 'app_main', login: true },
        { role: 'app_batch', login: false },
        { role: 'app_batch_worker', login: true },
      ],
    });
    expect([await canLogin('app_main'), await canLogin('app_batch_worker')]).toEqual([false, false]);
    await expect(writeAs('app_main', 'frozen')).rejects.toThrow(/not permitted to log in/);
    await expect(writeAs('app_batch_worker', 'frozen-batch')).rejects.toThrow(/not permitted to log in/);
    // Crash: no resume, the process's pools just go away.
    await machines.close();
    await first.close();

    // A fresh process gets the record back from the journal while the freeze is in force.
    const second = await factory();
    const rebuilt = await second.machines(session);
    expect(rebuilt.freeze instanceof InDatabaseFreeze && rebuilt.freeze.record).toEqual(persisted);
    await rebuilt.close();

    const approvals = new ApprovalStore(db);
    const engine = new CutoverEngine({
      sessions,
      journal,
      approvals,
      lock: { withTryLock: (key, work) => db.withTryAdvisoryLock(key, work) },
      facts: new FactRecorder(new AuditLog(db), { published: ({ fact }) => void notes.push(factLine(fact)?.text ?? '') }, logger),
      log: logger,
      machines: (s) => second.machines(s),
      lag: async () => ({ known: false, at: new Date(), reason: 'not measured here' }),
    });
    const outcomes = await engine.recover();
    expect(outcomes).toMatchObject([{ sessionId: session.id, result: 'applied', decision: { action: 'undo-freeze' } }]);
    // Exactly as before: the login roles log in again, the group role app_batch stays NOLOGIN.
    expect([await canLogin('app_main'), await canLogin('app_batch'), await canLogin('app_batch_worker')]).toEqual([true, false, true]);
    await writeAs('app_main', 'after');
    await writeAs('app_batch_worker', 'after-batch');
    expect((await sessions.require(session.id)).state).toBe('syncing');
    expect(notes.at(-1)).toMatch(/after a restart I found writes frozen/i);

    // Once undone, the record is no longer handed out: a later freeze records afresh.
    const later = await second.machines(await sessions.require(session.id));
    expect(later.freeze instanceof InDatabaseFreeze && later.freeze.record).toBeUndefined();
    await later.close();
    await engine.close();
    await second.close();
    expect(output()).not.toContain(cluster.password);
    expect(output()).not.toContain(APP_PASSWORD);
  });
});
