/**
 * `/migrate start <profile>` and its `--dry-run`, and `/migrate report …`: the use cases that begin
 * a session or change how it reports. Checks people and the channel once; records each fact once.
 */
import { randomUUID } from 'node:crypto';
import type { LoadedConfig, Profile } from '../config/profiles.js';
import { decide } from '../domain/gates.js';
import type { PreflightItem } from '../domain/ports/machines.js';
import type { PlanStep } from './session-operations.js';
import type { AuditLog, ReportSchedules, SessionRepository } from '../domain/ports/stores.js';
import type { ReportSchedule } from '../domain/report-schedule.js';
import type { Session } from '../domain/session.js';
import { CodedError, ErrorCode } from '../errors.js';
import type { FactRecorder } from './facts.js';
import type { People, StatusBoard } from './people.js';
import type { SessionOperations } from './session-operations.js';

export interface StartDeps {
  config: LoadedConfig;
  people: People;
  sessions: SessionRepository;
  audit: Pick<AuditLog, 'append'>;
  schedules: ReportSchedules;
  operations: SessionOperations;
  facts: FactRecorder;
  status: StatusBoard;
  now: () => Date;
}

/** `/migrate start` refused because preflight failed: the failing checks, each with its fix, for the person who asked. */
export class PreflightRefused extends CodedError {
  readonly failed: PreflightItem[];

  constructor(profileName: string, failed: PreflightItem[]) {
    super(ErrorCode.PreflightFailed, `Preflight of \`${profileName}\` failed (${failed.length} ${failed.length === 1 ? 'check' : 'checks'}); nothing was started.`, {
      details: { profile: profileName, failedChecks: failed.length },
    });
    this.name = 'PreflightRefused';
    this.failed = failed;
  }
}

/** What a dry run found, for the person who asked. */
export interface DryRun {
  profileName: string;
  profile: Profile;
  preflight: PreflightItem[];
  plan: PlanStep[];
}

export class StartSession {
  readonly #d: StartDeps;

  constructor(deps: StartDeps) {
    this.#d = deps;
  }

  /** The profiles this channel may use, by name. */
  profilesFor(channelId: string): [string, Profile][] {
    return [...this.#d.config.profiles.entries()].filter(([, p]) => p.channels.includes(channelId));
  }

  async active(channelId: string): Promise<Session> {
    const session = await this.#d.sessions.activeInChannel(channelId);
    if (!session) {
      throw new CodedError(ErrorCode.SessionNotFound, 'There is no active migration session in this channel; start one with `/migrate start <profile>`.');
    }
    return session;
  }

  /**
   * Runs preflight on a draft (refused on a failing check, before anything is stored), then creates
   * the session, posts its status message, starts DigitalOcean's migration.
   */
  async start(channelId: string, userId: string, profileName: string): Promise<Session> {
    const { profile, stuck } = await this.#startChecks(channelId, userId, profileName);
    const failed = (await this.#d.operations.preflight(this.#draft(channelId, userId, profileName, profile))).filter((i) => i.status === 'fail');
    if (failed.length > 0) {
      const refusal = new PreflightRefused(profileName, failed);
      await this.#d.audit.append({
        sessionId: null,
        channelId,
        actor: userId,
        action: 'start',
        outcome: 'refused',
        details: { profile: profileName, reason: refusal.message, failedChecks: failed.map((i) => i.check) },
      });
      throw refusal;
    }
    let posted: Session;
    if (stuck) posted = stuck.statusMessageTs ? stuck : await this.#d.status.post(stuck);
    else {
      const created = await this.#d.sessions.create({ channelId, profile: profileName, strategy: profile.strategy, startedBy: userId });
      posted = await this.#postOrDiscard(created);
      await this.#d.facts.record(posted, { type: 'session_started', actor: userId, profile: profileName });
    }
    try {
      return await this.#d.operations.startMigration({ sessionId: posted.id, expectedVersion: posted.version }, { userId });
    } finally {
      this.#d.status.refresh(posted.id);
    }
  }

  /** The same checks as a start, then preflight and the exact cutover plan, on a draft that is never stored. */
  async dryRun(channelId: string, userId: string, profileName: string): Promise<DryRun> {
    const { profile } = await this.#startChecks(channelId, userId, profileName);
    const draft = this.#draft(channelId, userId, profileName, profile);
    const [preflight, plan] = await Promise.all([this.#d.operations.preflight(draft), this.#d.operations.plan(draft)]);
    const failed = preflight.filter((i) => i.status === 'fail').length;
    await this.#d.audit.append({
      sessionId: null,
      channelId,
      actor: userId,
      action: 'dry_run',
      outcome: failed ? 'failed' : 'succeeded',
      details: { profile: profileName, failedChecks: failed, steps: plan.length },
    });
    return { profileName, profile, preflight, plan };
  }

  /** `/migrate report …` on the channel's active session. */
  async setReport(channelId: string, userId: string, schedule: ReportSchedule): Promise<void> {
    const session = await this.active(channelId);
    const checked = await this.#d.people.check('report', { sessionId: session.id, version: session.version }, userId);
    await this.#d.schedules.set(session.id, schedule, userId, this.#d.now());
    await this.#d.facts.record(checked.session, { type: 'report_schedule_set', actor: userId, schedule: schedule.text });
    this.#d.status.refresh(session.id);
  }

  /**
   * Posts a new session's status message. When that fails (the bot is not in the channel…) nothing has
   * happened yet: the session is removed, so it blocks no later start, and the failure is audited.
   */
  async #postOrDiscard(created: Session): Promise<Session> {
    try {
      return await this.#d.status.post(created);
    } catch (error) {
      await this.#d.sessions.discard(created.id);
      const reason = error instanceof CodedError ? error.code : 'status message not posted';
      await this.#d.audit.append({ sessionId: null, channelId: created.channelId, actor: created.startedBy, action: 'start', outcome: 'failed', details: { profile: created.profile, reason } });
      throw error;
    }
  }

  /** A session that is never stored: what preflight and the plan are computed on before a start. */
  #draft(channelId: string, userId: string, profileName: string, profile: Profile): Session {
    const now = this.#d.now();
    return {
      id: randomUUID(),
      channelId,
      profile: profileName,
      strategy: profile.strategy,
      state: 'created',
      version: 0,
      doMigrationId: null,
      startedBy: userId,
      statusMessageTs: null,
      createdAt: now,
      updatedAt: now,
    };
  }

  /**
   * Refuses a profile not allowed here, a person who is not an operator, a busy channel (audited
   * without a session). A session of the same profile whose start died before DigitalOcean's migration
   * was recorded (`stuck`) does not make the channel busy: the start continues it.
   */
  async #startChecks(channelId: string, userId: string, profileName: string): Promise<{ profile: Profile; stuck?: Session }> {
    const profile = this.#d.config.profiles.get(profileName);
    const here = this.profilesFor(channelId).map(([n]) => `\`${n}\``);
    const refuse = async (code: ErrorCode, reason: string): Promise<never> => {
      await this.#d.audit.append({ sessionId: null, channelId, actor: userId, action: 'start', outcome: 'refused', details: { profile: profileName, reason } });
      throw new CodedError(code, reason);
    };
    if (!profile) return refuse(ErrorCode.ProfileNotFound, `There is no profile \`${profileName}\`. Profiles for this channel: ${here.join(', ') || 'none'}.`);
    if (!profile.channels.includes(channelId)) {
      return refuse(ErrorCode.ProfileNotAllowedHere, `The profile \`${profileName}\` may not be used in this channel. Profiles for this channel: ${here.join(', ') || 'none'}.`);
    }
    const decision = decide({ action: 'start', actor: userId, roles: await this.#d.people.roles(userId, profile), policy: profile.gates, requests: {}, now: this.#d.now() });
    if (!decision.ok) return refuse(ErrorCode.NotAuthorized, `You cannot start a migration of \`${profileName}\`: ${decision.reason}.`);
    const active = await this.#d.sessions.activeInChannel(channelId);
    if (active?.state === 'created' && active.doMigrationId === null && active.profile === profileName) return { profile, stuck: active };
    if (active) {
      return refuse(ErrorCode.SessionAlreadyActive, `This channel already has an active session (\`${active.profile}\`, ${active.state}); finish or abort it first.`);
    }
    return { profile };
  }
}
