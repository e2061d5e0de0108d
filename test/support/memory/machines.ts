/**
 * Fake machines for one source/target pair: a write freeze, a router (proxy strategy), a fence, a lag
 * probe, a sequence copier, DigitalOcean's online migration and (proxy strategy) the reverse replication, sharing one state (`MachineWorld`) and
 * one ordered log of the calls made to them (`calls`, e.g. 'freeze', 'fence', 'repoint:target',
 * 'resume', 'stop_migration'). A test can make a call fail (once, n times, always; before or after
 * its effect) or hang until released (a crash placed in the middle of a step: the effect happened,
 * the answer never came back). Calls go through the calling process, so a killed one gets no answer.
 */
import type { CutoverSettings, PreflightItem, SessionMachines, TargetParameters } from '../../../src/domain/ports/machines.js';
import type { DatabaseCluster, DigitalOceanApi, OnlineMigration } from '../../../src/domain/ports/digitalocean.js';
import type { FenceResult, LagSample } from '../../../src/domain/ports/replication.js';
import type { ReverseCapability, ReverseReplication } from '../../../src/domain/ports/reverse-replication.js';
import type { Clock } from '../../../src/domain/ports/clock.js';
import type { Endpoint, Router, WriteFreeze } from '../../../src/domain/ports/writes.js';
import type { FrozenWhat } from '../../../src/domain/attempt.js';
import { CodedError, ErrorCode } from '../../../src/errors.js';
import { Secret } from '../../../src/secret.js';
import type { Process } from './process.js';

export type MachineCall =
  | 'lag'
  | 'preflight'
  | 'inspect'
  | 'freeze'
  | 'resume'
  | 'catch_up'
  | 'fence'
  | 'sequences'
  | 'repoint:target'
  | 'repoint:source'
  | 'start_migration'
  | 'get_migration'
  | 'stop_migration'
  | 'target_parameters'
  | 'writes_held'
  | 'get_cluster'
  | 'reverse_prepare'
  | 'reverse_switch_point'
  | 'reverse_attach'
  | 'reverse_status'
  | 'reverse_fence'
  | 'reverse_sequences'
  | 'reverse_drop';

/** Calls that only look: left out of `effects()`. */
const READS: ReadonlySet<MachineCall> = new Set(['lag', 'preflight', 'inspect', 'catch_up', 'get_migration', 'writes_held', 'get_cluster', 'reverse_switch_point', 'reverse_status']);

export const SOURCE: Endpoint = { host: 'source.internal', port: 5432, database: 'orders' };
export const TARGET: Endpoint = { host: 'db-target.ondigitalocean.com', port: 25060, database: 'orders', user: 'doadmin', password: new Secret('target-password-0123'), tls: true };
export const TARGET_PASSWORD = 'target-password-0123';

export interface Hang {
  /** Resolves once the call is made (and, unless `beforeEffect`, its effect happened). */
  reached: Promise<void>;
  /** Lets the call answer (a killed caller still never sees the answer). */
  release(): void;
}

interface Failure {
  remaining: number;
  error: () => Error;
  afterEffect: boolean;
}

interface PendingHang extends Hang {
  beforeEffect: boolean;
  reach(): void;
  released: Promise<void>;
}

const defaultError = (call: MachineCall): Error => {
  switch (call) {
    case 'fence':
    case 'catch_up':
      return new CodedError(ErrorCode.FenceTimeout, 'The target did not confirm the source writes in time (fake).');
    case 'repoint:target':
    case 'repoint:source':
      return new CodedError(ErrorCode.ProxyVerifyFailed, `The proxy did not take the new line (fake ${call}).`);
    case 'freeze':
    case 'resume':
      return new CodedError(ErrorCode.ProxyAdminFailed, `The proxy refused ${call.toUpperCase()} (fake).`);
    case 'stop_migration':
    case 'start_migration':
    case 'get_migration':
    case 'get_cluster':
      return new CodedError(ErrorCode.DoUnavailable, `DigitalOcean answered 503 to ${call} (fake).`);
    default:
      return new CodedError(ErrorCode.DatabaseUnavailable, `${call} failed: connection refused (fake).`);
  }
};

export interface MachinesOptions {
  process: Process;
  clock: Clock;
  settings: CutoverSettings;
  frozenWhat: FrozenWhat;
  /** The proxy strategy's router; absent with connection parameters. */
  routed: boolean;
}

export class MachineWorld {
  /** Every call made, in order. */
  readonly calls: MachineCall[] = [];
  frozen = false;
  pointsTo: 'source' | 'target' = 'source';
  migration: OnlineMigration | undefined;
  lagBytes: number | null = 4096;
  preflightItems: PreflightItem[] = [{ check: 'wal_level', status: 'pass', detail: 'logical' }];
  /** How long proving the fence takes (fake clock); longer than its timeout: FenceTimeout at the timeout. */
  fenceTakesMs = 0;
  /** The oldest open write transaction on the source (what a freeze would wait for), ms. */
  drainMs = 0;
  /** Where the proxy's entry is named in the plan (a different name is a different plan). */
  routerLabel = 'pgbouncer database orders';
  /** The router is the freeze and sends a repoint with its resume (PgBouncer): a run then does (Router.repointAndResume). */
  oneProxy = false;
  /** Machines built and not closed yet. */
  open = 0;
  /** Whether the target can replicate back (its rights, as the reverse replication's prepare() finds them). */
  reverseCapable = true;
  /** The reverse replication on the target (a slot from prepare) and the source's subscription on it (from the switch point). */
  reverse: { slot: boolean; attachedFrom: string | null } = { slot: false, attachedFrom: null };
  readonly #failures = new Map<MachineCall, Failure>();
  readonly #hangs = new Map<MachineCall, PendingHang[]>();
  #migrations = 0;

  /** The next `times` calls of `call` fail ('always': every one until `heal`). */
  fail(call: MachineCall, options: { times?: number | 'always'; error?: () => Error; afterEffect?: boolean } = {}): void {
    const times = options.times === 'always' ? Number.POSITIVE_INFINITY : (options.times ?? 1);
    this.#failures.set(call, { remaining: times, error: options.error ?? (() => defaultError(call)), afterEffect: options.afterEffect ?? false });
  }

  heal(call: MachineCall): void {
    this.#failures.delete(call);
  }

  /** The next call of `call` hangs until released (after its effect, unless `beforeEffect`). */
  hang(call: MachineCall, options: { beforeEffect?: boolean } = {}): Hang {
    let reach!: () => void;
    let release!: () => void;
    const reached = new Promise<void>((resolve) => (reach = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    const pending: PendingHang = { reached, release, reach, released, beforeEffect: options.beforeEffect ?? false };
    this.#hangs.set(call, [...(this.#hangs.get(call) ?? []), pending]);
    return pending;
  }

  count(call: MachineCall): number {
    return this.calls.filter((c) => c === call).length;
  }

  /** The calls that change something where writes go (the freeze, the router, DigitalOcean), in order. */
  effects(): MachineCall[] {
    return this.calls.filter((c) => !READS.has(c) && !c.startsWith('reverse_'));
  }

  /** The reverse replication's calls that change something, in order (see `reverse` for its state). */
  reverseEffects(): MachineCall[] {
    return this.calls.filter((c) => !READS.has(c) && c.startsWith('reverse_'));
  }

  machines(o: MachinesOptions): SessionMachines {
    const call = <T>(name: MachineCall, effect: () => T | Promise<T>): Promise<T> => this.#call(o.process, name, effect);
    const freeze: WriteFreeze = {
      clientImpact: o.frozenWhat.method === 'proxy-pause' ? 'queries-wait' : 'writes-fail',
      freeze: () => call('freeze', () => void (this.frozen = true)),
      resume: () => call('resume', () => void (this.frozen = false)),
    };
    const endpoint = () => (this.pointsTo === 'source' ? SOURCE : TARGET);
    const router: Router = {
      kind: 'pgbouncer',
      limitations: [],
      inspect: () =>
        call('inspect', () => ({ pointsTo: { host: endpoint().host, port: endpoint().port, database: endpoint().database }, frozen: this.frozen, healthy: true, detail: 'fake pgbouncer' })),
      repoint: (to) => {
        const where = to.host === TARGET.host ? 'target' : 'source';
        return call(`repoint:${where}`, () => void (this.pointsTo = where));
      },
      close: async () => undefined,
    };
    // One proxy for both, as PgBouncer: a repoint sent with the resume resumes even when it did not take.
    const proxy = this.oneProxy
      ? Object.assign({}, router, freeze, {
          repointAndResume: async (to: Endpoint) => {
            const refused = await router.repoint(to).then(() => undefined, (error: unknown) => error);
            await freeze.resume();
            if (refused) throw refused;
          },
        })
      : undefined;
    const digitalocean: DigitalOceanApi = {
      startOnlineMigration: (_cluster) => call('start_migration', () => this.#start()),
      getOnlineMigration: () => call('get_migration', () => (this.migration ? { ...this.migration } : undefined)),
      stopOnlineMigration: (_cluster, id) =>
        call('stop_migration', () => {
          if (this.migration?.id === id && (this.migration.status === 'running' || this.migration.status === 'syncing')) this.migration = { ...this.migration, status: 'canceled' };
        }),
      getCluster: (id) => call('get_cluster', (): DatabaseCluster => ({ id, name: 'target', engine: 'pg', version: '16', status: 'online', connection: this.#connection() })),
      listFirewallRules: async () => [],
      appendFirewallRules: async (_cluster, rules) => ({ added: rules.map((r) => r.value) }),
      getCaCertificate: async () => '-----BEGIN CERTIFICATE-----\n(fake)\n-----END CERTIFICATE-----\n',
      listDatabases: async () => [o.settings.targetDatabase],
      createUser: async (_cluster, name) => ({ name, password: new Secret('fake-app-password') }),
      getUser: async () => undefined,
    };
    const fence = {
      // Before the freeze (its failure is set with fail('catch_up'); fenceTakesMs is the proof inside the freeze).
      catchUp: () => call('catch_up', (): FenceResult => ({ method: 'marker', lsn: '0/3000000', elapsedMs: 1 })),
      prove: (timeoutMs: number) =>
        call('fence', async (): Promise<FenceResult> => {
          const takes = this.fenceTakesMs;
          if (takes > 0) await new Promise<void>((resolve) => o.clock.setTimer(Math.min(takes, timeoutMs), resolve));
          if (takes > timeoutMs) {
            throw new CodedError(ErrorCode.FenceTimeout, `The target did not confirm the source's writes within ${Math.round(timeoutMs / 1000)} s (fake).`, { details: { timeoutMs } });
          }
          return { method: 'marker', lsn: '0/3000060', elapsedMs: takes };
        }),
    };
    const capability = (): ReverseCapability =>
      this.reverseCapable ? { ok: true, reasons: [], publication: 'all-tables' } : { ok: false, reasons: ['the target user has neither SUPERUSER nor REPLICATION (fake)'], publication: null };
    const reverse: ReverseReplication = {
      capability: async () => capability(),
      prepare: () =>
        call('reverse_prepare', (): ReverseCapability => {
          if (this.reverseCapable) this.reverse = { slot: true, attachedFrom: null };
          return capability();
        }),
      establish: () => call('reverse_switch_point', () => (this.reverse.slot ? { slot: 'pgcutover_rev', lsn: '0/4000000', elapsedMs: 1 } : null)),
      attach: (from) =>
        call('reverse_attach', () => {
          if (!this.reverse.slot) throw new CodedError(ErrorCode.CutoverStepFailed, 'The reverse replication slot is gone (fake).');
          this.reverse = { slot: true, attachedFrom: from };
        }),
      status: () =>
        call('reverse_status', () => ({ slot: this.reverse.slot, streaming: this.reverse.attachedFrom !== null, retainedWalBytes: this.reverse.slot ? 0 : null, lagBytes: this.reverse.slot ? 0 : null })),
      rollback: {
        fence: { prove: () => call('reverse_fence', (): FenceResult => ({ method: 'marker', lsn: '0/5000000', elapsedMs: 2 })) },
        sequences: { copy: () => call('reverse_sequences', () => ({ copied: 3, unused: 0, elapsedMs: 2 })) },
      },
      drop: () =>
        call('reverse_drop', () => {
          const had = this.reverse.slot ? 1 : 0;
          this.reverse = { slot: false, attachedFrom: null };
          return { subscriptions: had, slots: had, publications: had };
        }),
      close: async () => undefined,
    };
    this.open += 1;
    return {
      settings: o.settings,
      digitalocean,
      lag: { measure: () => call('lag', () => this.lagSample(o.clock)) },
      fence,
      sequences: { copy: () => call('sequences', () => ({ copied: 3, unused: 1, elapsedMs: 4 })) },
      freeze: proxy ?? freeze,
      frozenWhat: o.frozenWhat,
      ...(o.routed ? { routing: { router: proxy ?? router, source: SOURCE, target: TARGET }, routerLabel: this.routerLabel, reverse } : {}),
      freezeInputs: async () => ({
        drainMs: this.drainMs,
        sourceRttMs: 1,
        targetRttMs: 1,
        proxyRttMs: o.routed ? 0.5 : null,
        applyDelayMs: 200,
        sequences: 3,
        sourceLsn: '0/3000060',
      }),
      preflight: () => call('preflight', () => this.preflightItems.map((i) => ({ ...i }))),
      targetParameters: () =>
        call('target_parameters', (): TargetParameters => {
          const c = this.#connection();
          return { host: c.host, port: c.port, database: o.settings.targetDatabase, user: c.user, password: c.password, sslmode: 'require' };
        }),
      startMigration: () => call('start_migration', () => ({ migrationId: this.#start().id })),
      writesHeld: () => call('writes_held', () => (this.frozen ? 7 : 0)),
      close: async () => void (this.open -= 1),
    };
  }

  lagSample(clock: Clock): LagSample {
    return this.lagBytes === null
      ? { known: false, at: clock.now(), reason: 'the slot is inactive (fake)' }
      : { known: true, at: clock.now(), slot: 'do_slot', slotActive: true, bytes: this.lagBytes, seconds: 0.2 };
  }

  #start(): OnlineMigration {
    this.#migrations += 1;
    this.migration = { id: `mig-${this.#migrations}`, status: 'syncing', createdAt: '2030-03-04T05:06:07Z' };
    return { ...this.migration };
  }

  #connection() {
    return { host: TARGET.host, port: TARGET.port, user: 'doadmin', password: new Secret(TARGET_PASSWORD), database: 'defaultdb', ssl: true };
  }

  #call<T>(process: Process, name: MachineCall, effect: () => T | Promise<T>): Promise<T> {
    return process.guard(async () => {
      this.calls.push(name);
      const failure = this.#failures.get(name);
      if (failure) {
        failure.remaining -= 1;
        if (failure.remaining <= 0) this.#failures.delete(name);
      }
      const hang = this.#hangs.get(name)?.shift();
      if (failure && !failure.afterEffect) throw failure.error();
      if (hang?.beforeEffect) {
        hang.reach();
        await hang.released;
        if (!process.alive) return new Promise<T>(() => undefined);
      }
      const result = await effect();
      if (failure) throw failure.error();
      if (hang && !hang.beforeEffect) {
        hang.reach();
        await hang.released;
      }
      return result;
    });
  }
}
