/**
 * The whole application on in-memory ports: the real use cases (StartSession, People, SessionActions)
 * and the real cutover engine, on the in-memory store, fake machines and a fake clock. A `House` is
 * one world (one store, one set of machines, one clock, one channel's thread of events); each
 * `replica()` is one bot process wired like the composition root wires it, which a test can kill.
 */
import { CutoverEngine } from '../../../src/app/cutover/engine.js';
import { FactRecorder, auditOf, type EventListener, type Fact, type SessionEvent } from '../../../src/app/facts.js';
import { People, type GroupDirectory, type StatusBoard } from '../../../src/app/people.js';
import { SessionActions, type SessionAction } from '../../../src/app/session-actions.js';
import { StartSession } from '../../../src/app/start-session.js';
import { parseProfiles, type LoadedConfig, type Profile } from '../../../src/config/profiles.js';
import type { FrozenWhat } from '../../../src/domain/attempt.js';
import type { CutoverStep, JournalEvent } from '../../../src/domain/cutover-plan.js';
import type { CutoverFlow } from '../../../src/domain/gates.js';
import type { CutoverSettings } from '../../../src/domain/ports/machines.js';
import type { StepEvent } from '../../../src/domain/ports/stores.js';
import type { Session } from '../../../src/domain/session.js';
import { createLogger, type Logger } from '../../../src/log.js';
import { FakeClock, flush } from './clock.js';
import { MachineWorld } from './machines.js';
import { Process } from './process.js';
import { MemoryStore, type MemoryPorts } from './stores.js';
import { cutoverSettingsOf, frozenWhatOf } from '../../../src/adapters/session-machines.js';

export const U = {
  /** An operator. */
  OPS: 'U0OPS',
  /** An approver (approvers may approve a freeze too). */
  APP: 'U0APP',
  /** Another approver. */
  BOB: 'U0BOB',
  /** An operator through the user group S0DBAS. */
  DAN: 'U0DAN',
  /** Nobody in particular. */
  EVE: 'U0EVE',
} as const;

export const CHANNEL = { orders: 'C0ORDERS', catalog: 'C0CATALOG', solo: 'C0SOLO', pooled: 'C0POOLED' } as const;
export type ProfileName = keyof typeof CHANNEL;

const profilesYaml = (o: ProfileNumbers) => `
profiles:
  orders:
    channels: [${CHANNEL.orders}]
    strategy: proxy
    source: { host: source.internal, database: orders, user: migrator, password: "\${SOURCE_PASSWORD}" }
    digitalocean: { clusterUuid: 9cc10173-e9ea-4176-9dbc-a4cee4c4ff30, database: orders }
    replication: { fenceTimeoutSeconds: ${o.fenceTimeoutSeconds} }
    proxy:
      kind: pgbouncer
      admin: { host: bouncer.internal, user: pgcutover, password: "\${BOUNCER_PASSWORD}" }
      database: orders
      databasesFile: /etc/pgbouncer/databases.ini
    freeze: { method: proxy-pause, budgetSeconds: ${o.budgetSeconds} }
    gates: { operators: [${U.OPS}, S0DBAS], approvers: [${U.APP}, ${U.BOB}], twoPersonRule: true, flow: ${o.flow}, approvalExpiryMinutes: 15 }
  catalog:
    channels: [${CHANNEL.catalog}]
    strategy: connection-parameters
    source: { host: source.internal, database: catalog, user: migrator, password: "\${SOURCE_PASSWORD}" }
    digitalocean: { clusterUuid: 5f1d3c2e-7a8b-4c9d-8e0f-1a2b3c4d5e6f, database: catalog }
    replication: { fenceTimeoutSeconds: ${o.fenceTimeoutSeconds} }
    proxy: { kind: none }
    freeze: { method: read-only-roles, appRoles: [catalog_app], budgetSeconds: ${o.budgetSeconds} }
    gates: { operators: [${U.OPS}, S0DBAS], approvers: [${U.APP}, ${U.BOB}], twoPersonRule: true, flow: ${o.flow}, approvalExpiryMinutes: 15 }
  solo:
    channels: [${CHANNEL.solo}]
    strategy: proxy
    source: { host: source.internal, database: orders, user: migrator, password: "\${SOURCE_PASSWORD}" }
    digitalocean: { clusterUuid: 0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f, database: orders }
    replication: { fenceTimeoutSeconds: ${o.fenceTimeoutSeconds} }
    proxy:
      kind: pgbouncer
      admin: { host: bouncer.internal, user: pgcutover, password: "\${BOUNCER_PASSWORD}" }
      database: orders
      databasesFile: /etc/pgbouncer/databases.ini
    freeze: { method: proxy-pause, budgetSeconds: ${o.budgetSeconds} }
    gates: { operators: [${U.OPS}], approvers: [${U.APP}, ${U.BOB}], twoPersonRule: false, flow: ${o.flow} }
  pooled:
    channels: [${CHANNEL.pooled}]
    strategy: proxy
    source: { host: source.internal, database: orders, user: migrator, password: "\${SOURCE_PASSWORD}" }
    digitalocean: { clusterUuid: 2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f, database: orders }
    replication: { fenceTimeoutSeconds: ${o.fenceTimeoutSeconds} }
    proxy: { kind: pgpool, pcp: { host: pgpool.internal, user: pcpadmin, password: "\${BOUNCER_PASSWORD}" } }
    freeze: { method: read-only-roles, appRoles: [orders_app], budgetSeconds: ${o.budgetSeconds} }
    gates: { operators: [${U.OPS}, S0DBAS], approvers: [${U.APP}, ${U.BOB}], twoPersonRule: true, flow: ${o.flow}, approvalExpiryMinutes: 15 }
`;

/** Parsed once per set of numbers (the parse and validation cost more than a whole in-memory cutover). */
const parsed = new Map<string, LoadedConfig>();
interface ProfileNumbers {
  budgetSeconds: number;
  fenceTimeoutSeconds: number;
  flow: CutoverFlow;
}

function profiles(o: ProfileNumbers): LoadedConfig {
  const key = `${o.budgetSeconds}/${o.fenceTimeoutSeconds}/${o.flow}`;
  let config = parsed.get(key);
  if (!config) {
    config = parseProfiles(profilesYaml(o), 'memory.yml', { SOURCE_PASSWORD: 'source-password', BOUNCER_PASSWORD: 'bouncer-password' });
    parsed.set(key, config);
  }
  return config;
}

export interface HouseOptions {
  budgetSeconds?: number;
  fenceTimeoutSeconds?: number;
  /** How often the holder of a freeze polls for a switch approved elsewhere (fake clock; default 200 ms). */
  approvalPollMs?: number;
  start?: Date;
  /** The profiles' cutover flow (default step-by-step: a freeze approval freezes at once). */
  flow?: CutoverFlow;
}

/** An event as the channel received it, with the replica that recorded it. */
export interface ChannelEvent extends SessionEvent {
  replica: string;
}

/** The engine's settings and what the freeze freezes, derived as production derives them. */
function settingsOf(profile: Profile): { settings: CutoverSettings; frozenWhat: FrozenWhat } {
  return { settings: cutoverSettingsOf(profile), frozenWhat: frozenWhatOf(profile, profile.freeze.method === 'proxy-pause' ? 'pgbouncer' : 'database') };
}

export class House {
  readonly clock: FakeClock;
  readonly store: MemoryStore;
  readonly world = new MachineWorld();
  readonly config: LoadedConfig;
  readonly log: Logger = createLogger('silent');
  /** Every event recorded, by any replica, in the order the listener got them. */
  readonly events: ChannelEvent[] = [];
  readonly groups = new Map<string, string[]>([['S0DBAS', [U.DAN]]]);
  readonly options: HouseOptions;
  readonly #replicas: Replica[] = [];

  constructor(options: HouseOptions = {}) {
    this.options = options;
    this.clock = new FakeClock(options.start);
    this.store = new MemoryStore(() => this.clock.now());
    this.config = profiles({ budgetSeconds: options.budgetSeconds ?? 30, fenceTimeoutSeconds: options.fenceTimeoutSeconds ?? 15, flow: options.flow ?? 'step-by-step' });
  }

  /** A new bot process on the shared store, machines and clock. */
  replica(name = `R${this.#replicas.length + 1}`): Replica {
    const replica = new Replica(this, name);
    this.#replicas.push(replica);
    return replica;
  }

  machinesFor(session: Session, process: Process) {
    const profile = this.config.profiles.get(session.profile);
    if (!profile) throw new Error(`no profile ${session.profile}`);
    const { settings, frozenWhat } = settingsOf(profile);
    return this.world.machines({ process, clock: this.clock.for(process), settings, frozenWhat, routed: profile.strategy === 'proxy' });
  }

  /** The facts of a session, in order. */
  facts(sessionId: string): Fact[] {
    return this.events.filter((e) => e.session.id === sessionId).map((e) => e.fact);
  }

  factTypes(sessionId: string): string[] {
    return this.facts(sessionId).map((f) => f.type);
  }

  /** Every audit row of the session is the row of exactly one recorded fact, in the same order. */
  async auditMatchesFacts(sessionId: string): Promise<{ rows: string[]; facts: string[] }> {
    const rows = (await this.store.audit.forSession(sessionId, 10_000)).map((r) => `${r.actor} ${r.action} ${r.outcome}`);
    const facts = this.facts(sessionId).map((f) => {
      const a = auditOf(f);
      return `${f.actor} ${a.action} ${a.outcome}`;
    });
    return { rows, facts };
  }

  async session(id: string): Promise<Session> {
    return this.store.sessions.require(id);
  }

  async settle(): Promise<void> {
    await flush(5);
  }
}

/** Where the status message is drawn: records posts and redraws. */
export class RecordingStatusBoard implements StatusBoard {
  readonly refreshed: string[] = [];
  #posted = 0;
  readonly #sessions: MemoryPorts['sessions'];

  constructor(sessions: MemoryPorts['sessions']) {
    this.#sessions = sessions;
  }

  async post(session: Session): Promise<Session> {
    this.#posted += 1;
    return this.#sessions.setStatusMessage(session.id, `1700000000.00010${this.#posted}`);
  }

  refresh(sessionId: string): void {
    this.refreshed.push(sessionId);
  }
}

export class Replica {
  readonly name: string;
  readonly process: Process;
  readonly ports: MemoryPorts;
  readonly facts: FactRecorder;
  readonly engine: CutoverEngine;
  readonly people: People;
  readonly actions: SessionActions;
  readonly start: StartSession;
  readonly status: RecordingStatusBoard;
  readonly #house: House;
  #crashAfter: ((port: string, method: string, args: unknown[]) => boolean) | undefined;
  readonly #pauses: { port: keyof MemoryPorts; method: string; reach(): void; released: Promise<void> }[] = [];

  constructor(house: House, name: string) {
    this.#house = house;
    this.name = name;
    this.process = new Process(name);
    this.ports = house.store.connect(this.process, async (port, method, args) => {
      if (this.#crashAfter?.(port, method, args)) this.process.kill();
      const pause = this.#pauses.find((p) => p.port === port && p.method === method);
      if (pause) {
        this.#pauses.splice(this.#pauses.indexOf(pause), 1);
        pause.reach();
        await pause.released;
      }
    });
    const listener: EventListener = { published: (event) => house.events.push({ ...event, replica: name }) };
    this.facts = new FactRecorder(this.ports.audit, listener, house.log);
    const clock = house.clock.for(this.process);
    const now = () => clock.now();
    this.engine = new CutoverEngine({
      sessions: this.ports.sessions,
      journal: this.ports.journal,
      approvals: this.ports.approvals,
      lock: this.ports.lock,
      facts: this.facts,
      log: house.log,
      machines: async (session) => house.machinesFor(session, this.process),
      lag: () => this.process.guard(async () => house.world.lagSample(clock)),
      clock,
      approvalPollMs: house.options.approvalPollMs ?? 200,
    });
    this.status = new RecordingStatusBoard(this.ports.sessions);
    const groups: GroupDirectory = {
      members: async (ids) => new Map(ids.map((id) => [id, house.groups.get(id) ?? []])),
    };
    this.people = new People({ config: house.config, sessions: this.ports.sessions, approvals: this.ports.approvals, groups, facts: this.facts, status: this.status, now });
    this.actions = new SessionActions({
      people: this.people,
      sessions: this.ports.sessions,
      idempotency: this.ports.idempotency,
      operations: this.engine,
      facts: this.facts,
      status: this.status,
      now,
    });
    this.start = new StartSession({
      config: house.config,
      people: this.people,
      sessions: this.ports.sessions,
      audit: this.ports.audit,
      schedules: this.ports.schedules,
      operations: this.engine,
      facts: this.facts,
      status: this.status,
      now,
    });
  }

  /** The process dies: in-flight calls never answer, timers never fire, its executor locks are released. */
  kill(): void {
    this.process.kill();
  }

  /** Kills the process right after it journals `event` of `step`; resolves when it died. */
  crashAfterJournal(step: CutoverStep, event: JournalEvent): Promise<void> {
    // A run journals its steps in one batch (`recordAll`): a crash after one of them is a crash after the batch.
    this.#crashAfter = (port, method, args) =>
      port === 'journal' &&
      ((method === 'record' && args[2] === step && args[3] === event) ||
        (method === 'recordAll' && (args[2] as StepEvent[]).some((e) => e.step === step && e.event === event)));
    return this.process.died;
  }

  /** The answer of this process's next `port.method` call is held back until released (a slow round trip). */
  pauseAfter(port: keyof MemoryPorts, method: string): { reached: Promise<void>; release(): void } {
    let reach!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((resolve) => (reach = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    this.#pauses.push({ port, method, reach, released });
    return { reached, release };
  }

  /** `action` on the session at its current version, as a click on the current status message. */
  async perform(action: SessionAction, sessionId: string, userId: string): Promise<Session | undefined> {
    const session = await this.#house.store.sessions.require(sessionId);
    return this.actions.perform(action, { sessionId, version: session.version }, userId);
  }

  /** Starts a session of `profile` in its channel; DigitalOcean's migration is syncing afterwards. */
  async startSession(profile: ProfileName, userId: string = U.OPS): Promise<Session> {
    return this.start.start(CHANNEL[profile], userId, profile);
  }
}
