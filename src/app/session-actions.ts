/**
 * The Slack surface's use cases, shared by commands, buttons and the modal: load the session at the
 * version the person saw, check people (permissions, two-person rule, expiry) with the pure gate
 * code, claim an idempotency key, then record the gate step and/or call the engine. Every request,
 * approval, refusal and outcome goes to the audit log and the session's thread.
 */
import { randomUUID } from 'node:crypto';
import type { LoadedConfig, Profile } from '../config/profiles.js';
import type { Actor, SessionOperations, SessionRef } from './session-operations.js';
import { decide, groupsOf, rolesOf, type Gate, type GateRequest, type RefusalCode, type UserAction } from '../domain/gates.js';
import type { ReportSchedule } from '../domain/report-schedule.js';
import type { Session } from '../domain/session.js';
import { CodedError, ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { ApprovalStore, IdempotencyStore, ReportScheduleStore } from '../adapters/store/approvals.js';
import type { AuditOutcome } from '../adapters/store/audit-log.js';
import type { Store } from '../adapters/store/index.js';
import { renderPlan, renderPreflight, slackDate } from '../adapters/slack/blocks.js';
import type { StatusMessages } from '../adapters/slack/status-message.js';
import type { GroupResolver } from '../adapters/slack/user-groups.js';

export interface SurfaceDeps {
  store: Store;
  approvals: ApprovalStore;
  idempotency: IdempotencyStore;
  schedules: ReportScheduleStore;
  config: LoadedConfig;
  operations: SessionOperations;
  status: StatusMessages;
  groups: GroupResolver;
  log: Logger;
  now: () => Date;
}

export interface Loaded {
  session: Session;
  profile: Profile;
  requests: Partial<Record<Gate, GateRequest>>;
}

const REFUSAL: Record<RefusalCode, ErrorCode> = {
  not_authorized: ErrorCode.NotAuthorized,
  gate_refused: ErrorCode.GateRefused,
  approval_expired: ErrorCode.ApprovalExpired,
  invalid_state: ErrorCode.InvalidTransition,
};

const LABEL: Record<UserAction, string> = {
  start: 'start the migration',
  freeze_request: 'request a write freeze',
  freeze_approve: 'approve the freeze',
  freeze_now: 'freeze writes',
  freeze_withdraw: 'withdraw the freeze request',
  switch_request: 'request the switch',
  switch_approve: 'approve the switch',
  switch_now: 'switch to the target',
  switch_run: 'switch to the target',
  switch_withdraw: 'withdraw the switch request',
  resume: 'resume writes',
  abort: 'abort the migration',
  rollback: 'roll back',
  finish: 'finish the migration',
  report: 'change the report schedule',
};

export class SessionActions {
  private readonly deps: SurfaceDeps;

  constructor(deps: SurfaceDeps) {
    this.deps = deps;
  }

  profile(name: string): Profile {
    const profile = this.deps.config.profiles.get(name);
    if (!profile) throw new CodedError(ErrorCode.ProfileNotFound, `The profile \`${name}\` is not configured any more.`);
    return profile;
  }

  async active(channelId: string): Promise<Session> {
    const session = await this.deps.store.sessions.activeInChannel(channelId);
    if (!session) {
      throw new CodedError(ErrorCode.SessionNotFound, 'There is no active migration session in this channel; start one with `/migrate start <profile>`.');
    }
    return session;
  }

  /**
   * Loads the session at the version the person acted on and checks they may do `action` now. A stale
   * version, a missing permission or a closed gate is refused (audited, a line in the thread) with a
   * CodedError for the person.
   */
  async check(action: UserAction, ref: { sessionId: string; version: number }, userId: string): Promise<Loaded> {
    const { store, approvals } = this.deps;
    const session = await store.sessions.get(ref.sessionId);
    if (!session) throw new CodedError(ErrorCode.SessionNotFound, 'That migration session no longer exists.');
    if (session.version !== ref.version) {
      await this.audit(session, userId, action, 'refused', { reason: 'stale', seenVersion: ref.version, version: session.version });
      void this.deps.status.refresh(session.id);
      throw new CodedError(
        ErrorCode.SessionConflict,
        `That button is from an older status message (v${ref.version}; the session is now at v${session.version}). Nothing was done; use the current status message.`,
        { details: { sessionId: session.id, seen: ref.version, current: session.version } },
      );
    }
    const profile = this.profile(session.profile);
    const requests = await approvals.open(session.id);
    const decision = decide({
      action,
      actor: userId,
      roles: await this.roles(userId, profile),
      policy: profile.gates,
      state: session.state,
      requests,
      now: this.deps.now(),
    });
    if (!decision.ok) {
      await this.audit(session, userId, action, 'refused', { reason: decision.reason, code: decision.code });
      await this.deps.status.thread(session, `:no_entry: <@${userId}> tried to ${LABEL[action]}: refused, ${decision.reason}.`);
      // The message may show a gate that has expired since it was drawn: redraw it.
      void this.deps.status.refresh(session.id);
      throw new CodedError(REFUSAL[decision.code], `You cannot ${LABEL[action]}: ${decision.reason}.`);
    }
    return { session, profile, requests };
  }

  /**
   * Performs `action` for `userId` on the session at `ref.version`: checks again (preconditions at
   * execution time), claims the idempotency key (session, version, action), then acts. `retry`: a
   * Slack retry (x-slack-retry-num) of a click already handled returns silently.
   */
  async perform(action: UserAction, ref: { sessionId: string; version: number }, userId: string, options: { retry?: boolean } = {}): Promise<void> {
    const key = `action:${ref.sessionId}:${ref.version}:${action}`;
    // A Slack retry of a click that was already handled: nothing to do and nothing to say.
    if (options.retry && (await this.deps.idempotency.exists(key))) return;
    const loaded = await this.check(action, ref, userId);
    if (!(await this.deps.idempotency.claim(key, this.deps.now()))) {
      if (options.retry) return;
      throw new CodedError(ErrorCode.SessionConflict, 'That is already being handled (someone clicked it a moment ago); watch the status message.');
    }
    try {
      await this.execute(action, loaded, userId);
    } catch (error) {
      // Give the key back when nothing moved, so the same button may be tried again.
      const now = await this.deps.store.sessions.get(ref.sessionId);
      if (now?.version === ref.version) await this.deps.idempotency.release(key);
      throw error;
    } finally {
      await this.deps.status.refresh(ref.sessionId);
    }
  }

  private async execute(action: UserAction, loaded: Loaded, userId: string): Promise<void> {
    const { session, profile, requests } = loaded;
    const { approvals, status, now } = this.deps;
    const expiryMinutes = profile.gates.approvalExpiryMinutes;
    const actor: Actor = { userId };
    const approver = (gate: Gate) =>
      profile.gates.twoPersonRule
        ? gate === 'freeze'
          ? 'another operator or approver'
          : 'an approver other than the requester'
        : gate === 'freeze'
          ? 'an operator or approver'
          : 'an approver';
    switch (action) {
      case 'freeze_request':
      case 'switch_request': {
        const gate: Gate = action === 'freeze_request' ? 'freeze' : 'switch';
        const { request } = await this.gateStep(session, (tx) =>
          approvals.request({ sessionId: session.id, gate, requestedBy: userId, now: now(), expiryMinutes }, tx),
        );
        await this.audit(session, userId, action, 'requested', { requestId: request.id, expiresAt: request.requestExpiresAt.toISOString() });
        await status.thread(
          session,
          `:raising_hand: <@${userId}> requested the ${gate === 'freeze' ? 'write freeze' : 'switch to the target'}. Needs approval by ${approver(gate)} before ${slackDate(request.requestExpiresAt, '{time}')}.`,
        );
        return;
      }
      case 'freeze_withdraw':
      case 'switch_withdraw': {
        const gate: Gate = action === 'freeze_withdraw' ? 'freeze' : 'switch';
        const open = requests[gate];
        if (!open) throw new CodedError(ErrorCode.GateRefused, `There is no open ${gate} request.`);
        await this.gateStep(session, (tx) => approvals.close(open.id, 'withdrawn', now(), tx));
        await this.audit(session, userId, action, 'succeeded', { requestId: open.id });
        await status.thread(session, `:leftwards_arrow_with_hook: <@${userId}> withdrew the ${gate} request of <@${open.requestedBy}>.`);
        return;
      }
      case 'freeze_approve':
      case 'freeze_now': {
        const { session: bumped, request } = await this.gateStep(session, async (tx) => {
          const open =
            action === 'freeze_now'
              ? await approvals.request({ sessionId: session.id, gate: 'freeze', requestedBy: userId, now: now(), expiryMinutes }, tx)
              : requests.freeze;
          if (!open) throw new CodedError(ErrorCode.GateRefused, 'Nobody has requested the freeze.');
          return approvals.approve(open.id, { approvedBy: userId, now: now(), expiryMinutes }, tx);
        });
        await this.audit(session, userId, action, 'approved', { requestId: request.id, requestedBy: request.requestedBy });
        await status.thread(
          session,
          action === 'freeze_now'
            ? `:ice_cube: <@${userId}> is freezing writes (two-person rule off).`
            : `:white_check_mark: <@${userId}> approved the write freeze requested by <@${request.requestedBy}>; freezing now.`,
        );
        await this.runEngine('freeze', bumped, userId, (ref) => this.deps.operations.freeze(ref, actor), request, {
          done: (s) => `:ice_cube: Writes are frozen (budget ${profile.freeze.budgetSeconds} s; they resume by themselves when it runs out). State: ${s.state}.`,
        });
        return;
      }
      case 'switch_approve':
      case 'switch_now': {
        const { session: bumped, request } = await this.gateStep(session, async (tx) => {
          const open =
            action === 'switch_now'
              ? await approvals.request({ sessionId: session.id, gate: 'switch', requestedBy: userId, now: now(), expiryMinutes }, tx)
              : requests.switch;
          if (!open) throw new CodedError(ErrorCode.GateRefused, 'Nobody has requested the switch.');
          return approvals.approve(open.id, { approvedBy: userId, now: now(), expiryMinutes }, tx);
        });
        await this.audit(session, userId, action, 'approved', {
          requestId: request.id,
          requestedBy: request.requestedBy,
          validUntil: request.approvalExpiresAt?.toISOString(),
          typedConfirmation: true,
        });
        if (bumped.state !== 'frozen') {
          await status.thread(
            session,
            `:white_check_mark: <@${userId}> approved the switch requested by <@${request.requestedBy}> ahead of time, valid until ${slackDate(request.approvalExpiresAt!, '{time}')}. It runs once writes are frozen and the fence is reached.`,
          );
          return;
        }
        await status.thread(
          session,
          action === 'switch_now'
            ? `:twisted_rightwards_arrows: <@${userId}> confirmed the switch (typed the database name); switching now.`
            : `:white_check_mark: <@${userId}> approved the switch requested by <@${request.requestedBy}> (typed the database name); switching now.`,
        );
        await this.runEngine('switch', bumped, userId, (ref) => this.deps.operations.switchover(ref, actor), request, {
          done: () => `:twisted_rightwards_arrows: Switched: traffic now goes to the target \`${profile.digitalocean.database}\`.`,
        });
        return;
      }
      case 'switch_run': {
        const approval = requests.switch;
        if (!approval) throw new CodedError(ErrorCode.GateRefused, 'The switch has not been approved.');
        await this.audit(session, userId, action, 'requested', { requestId: approval.id, approvedBy: approval.approvedBy });
        await status.thread(session, `:twisted_rightwards_arrows: <@${userId}> runs the switch approved by <@${approval.approvedBy}>.`);
        await this.runEngine('switch', session, userId, (ref) => this.deps.operations.switchover(ref, actor), approval, {
          done: () => `:twisted_rightwards_arrows: Switched: traffic now goes to the target \`${profile.digitalocean.database}\`.`,
        });
        return;
      }
      case 'resume':
        await this.direct(action, session, userId, (ref) => this.deps.operations.resume(ref, actor), ':arrow_forward: Writes resumed on the source.');
        return;
      case 'abort':
        await this.direct(action, session, userId, (ref) => this.deps.operations.abort(ref, actor), ':octagonal_sign: The migration was aborted; writes go to the source.');
        return;
      case 'rollback':
        await this.direct(action, session, userId, (ref) => this.deps.operations.rollback(ref, actor), ':leftwards_arrow_with_hook: Rolled back: traffic goes to the source again.');
        return;
      case 'finish':
        await this.direct(action, session, userId, (ref) => this.deps.operations.finish(ref, actor), ':checkered_flag: Finished: the DigitalOcean migration is stopped and the session is closed.');
        return;
      case 'start':
      case 'report':
        throw new CodedError(ErrorCode.Internal, `${action} is not a session action`);
    }
  }

  /** A gate step: bump the session version (compare-and-set) and change the request in one transaction. */
  private async gateStep<T>(session: Session, work: (tx: Parameters<Parameters<Store['db']['transaction']>[0]>[0]) => Promise<T>): Promise<{ session: Session; request: T }> {
    return this.deps.store.db.transaction(async (tx) => {
      const bumped = await this.deps.store.sessions.update(session.id, session.version, {}, tx);
      const request = await work(tx);
      return { session: bumped, request };
    });
  }

  private async direct(action: UserAction, session: Session, userId: string, call: (ref: SessionRef) => Promise<Session>, done: string): Promise<void> {
    await this.audit(session, userId, action, 'requested', {});
    await this.deps.status.thread(session, `:point_right: <@${userId}> asked to ${LABEL[action]}.`);
    await this.runEngine(action, session, userId, call, undefined, { done: () => done });
  }

  /** Calls the engine at the session's version; closes the gate request as executed or failed. */
  private async runEngine(
    step: string,
    session: Session,
    userId: string,
    call: (ref: SessionRef) => Promise<Session>,
    request: GateRequest | undefined,
    messages: { done: (s: Session) => string },
  ): Promise<Session> {
    const { approvals, status, now } = this.deps;
    try {
      const result = await call({ sessionId: session.id, expectedVersion: session.version });
      if (request) await approvals.close(request.id, 'executed', now());
      await this.audit(result, userId, step, 'succeeded', { from: session.state, to: result.state, version: result.version });
      await status.thread(result, messages.done(result), { broadcast: true });
      return result;
    } catch (error) {
      if (request) await approvals.close(request.id, 'failed', now());
      const message = error instanceof CodedError ? error.message : 'unexpected error';
      await this.audit(session, userId, step, 'failed', { code: error instanceof CodedError ? error.code : 'internal', message });
      await status.thread(session, `:x: ${step} failed: ${message}`, { broadcast: true });
      throw error;
    }
  }

  async roles(userId: string, profile: Profile) {
    return rolesOf(userId, profile.gates, await this.deps.groups.members(groupsOf(profile.gates)));
  }

  /** `/migrate start <profile>`: refuses a profile not allowed here, a user who is not an operator, a busy channel. */
  async start(channelId: string, userId: string, profileName: string): Promise<Session> {
    const { store, status, operations } = this.deps;
    const profile = await this.startChecks(channelId, userId, profileName);
    const created = await store.sessions.create({ channelId, profile: profileName, strategy: profile.strategy, startedBy: userId });
    await this.audit(created, userId, 'start', 'requested', { profile: profileName });
    const posted = await status.post(created);
    await status.thread(posted, `:rocket: <@${userId}> started a migration of *${profileName}* (session \`${posted.id.slice(0, 8)}\`).`);
    try {
      return await this.runEngine('start', posted, userId, (ref) => operations.startMigration(ref, { userId }), undefined, {
        done: (s) => `:arrows_counterclockwise: DigitalOcean's online migration is running${s.doMigrationId ? ` (\`${s.doMigrationId}\`)` : ''}.`,
      });
    } finally {
      await status.refresh(posted.id);
    }
  }

  /** `--dry-run`: the same checks as a start, then preflight and the exact cutover plan; nothing is changed. */
  async dryRun(channelId: string, userId: string, profileName: string): Promise<string> {
    const { store, operations } = this.deps;
    const profile = await this.startChecks(channelId, userId, profileName);
    // A draft that is never stored: a dry run neither creates a session nor holds the channel.
    const now = this.deps.now();
    const draft: Session = {
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
    const [preflight, plan] = await Promise.all([operations.preflight(draft), operations.plan(draft)]);
    const failed = preflight.filter((i) => i.status === 'fail').length;
    await store.audit.append({
      sessionId: null,
      channelId,
      actor: userId,
      action: 'dry_run',
      outcome: failed ? 'failed' : 'succeeded',
      details: { profile: profileName, failedChecks: failed, steps: plan.length },
    });
    return [
      `:test_tube: *Dry run of ${profileName}*: nothing was changed.`,
      `*Preflight* (${failed ? `${failed} failing` : 'all passing'})`,
      renderPreflight(preflight),
      `*The cutover would run these steps*`,
      renderPlan(plan),
      `Gates: freeze and switch need ${profile.gates.twoPersonRule ? 'a second person' : 'one person'}; approvals are valid ${profile.gates.approvalExpiryMinutes} min; freeze budget ${profile.freeze.budgetSeconds} s.`,
    ].join('\n');
  }

  private async startChecks(channelId: string, userId: string, profileName: string): Promise<Profile> {
    const { config, store } = this.deps;
    const profile = config.profiles.get(profileName);
    const here = [...config.profiles.entries()].filter(([, p]) => p.channels.includes(channelId)).map(([n]) => `\`${n}\``);
    const refuse = async (code: ErrorCode, reason: string): Promise<never> => {
      await store.audit.append({ sessionId: null, channelId, actor: userId, action: 'start', outcome: 'refused', details: { profile: profileName, reason } });
      throw new CodedError(code, reason);
    };
    if (!profile) {
      return refuse(ErrorCode.ProfileNotFound, `There is no profile \`${profileName}\`. Profiles for this channel: ${here.join(', ') || 'none'}.`);
    }
    if (!profile.channels.includes(channelId)) {
      return refuse(
        ErrorCode.ProfileNotAllowedHere,
        `The profile \`${profileName}\` may not be used in this channel. Profiles for this channel: ${here.join(', ') || 'none'}.`,
      );
    }
    const decision = decide({ action: 'start', actor: userId, roles: await this.roles(userId, profile), policy: profile.gates, requests: {}, now: this.deps.now() });
    if (!decision.ok) return refuse(ErrorCode.NotAuthorized, `You cannot start a migration of \`${profileName}\`: ${decision.reason}.`);
    const active = await store.sessions.activeInChannel(channelId);
    if (active) {
      return refuse(
        ErrorCode.SessionAlreadyActive,
        `This channel already has an active session (\`${active.profile}\`, ${active.state}); finish or abort it first.`,
      );
    }
    return profile;
  }

  async setReport(channelId: string, userId: string, schedule: ReportSchedule): Promise<void> {
    const session = await this.active(channelId);
    const loaded = await this.check('report', { sessionId: session.id, version: session.version }, userId);
    await this.deps.schedules.set(session.id, schedule, userId, this.deps.now());
    await this.audit(loaded.session, userId, 'report', 'succeeded', { schedule: schedule.text });
    await this.deps.status.thread(session, `:calendar: <@${userId}> set lag reports to *${schedule.text}*.`);
    await this.deps.status.refresh(session.id);
  }

  async audit(session: Session, actor: string, action: string, outcome: AuditOutcome, details: Record<string, unknown>): Promise<void> {
    await this.deps.store.audit.append({
      sessionId: session.id,
      channelId: session.channelId,
      actor,
      action,
      outcome,
      details: { version: session.version, ...details },
    });
  }
}
