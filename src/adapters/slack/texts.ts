/**
 * The single place where errors and facts become Slack text. Known error codes become a friendly
 * ephemeral line (the CodedError message is written for people); anything unknown becomes a generic
 * message with a short reference id that is logged with the full error. Facts become one thread line
 * each. Never a stack trace, never a secret.
 */
import { randomBytes } from 'node:crypto';
import type { SetupOutcome } from '../../app/cluster-setup.js';
import type { CutoverSummary, Fact } from '../../app/facts.js';
import type { Verification } from '../../domain/attempt.js';
import { PreflightRefused, type DryRun } from '../../app/start-session.js';
import { planChanges, type SetupPlan } from '../../domain/cluster-setup.js';
import { asCodedError, ErrorCode, type CodedError } from '../../errors.js';
import { MASKED } from '../../secret.js';
import type { Logger } from '../../log.js';
import { renderPlan, renderPreflight, slackDate } from './blocks.js';

export interface ErrorReply {
  text: string;
  /** Set when the error was unexpected and logged under this reference. */
  reference?: string;
}

/** Prefixes per code; codes not listed are shown with the generic prefix when their message is for people. */
const PREFIX: Partial<Record<ErrorCode, string>> = {
  [ErrorCode.CommandInvalid]: ':grey_question:',
  [ErrorCode.ProfileNotFound]: ':grey_question:',
  [ErrorCode.ProfileNotAllowedHere]: ':no_entry:',
  [ErrorCode.NotAuthorized]: ':no_entry:',
  [ErrorCode.GateRefused]: ':no_entry:',
  [ErrorCode.ApprovalExpired]: ':hourglass:',
  [ErrorCode.SessionConflict]: ':arrows_counterclockwise:',
  [ErrorCode.InvalidTransition]: ':warning:',
  [ErrorCode.SessionAlreadyActive]: ':warning:',
  [ErrorCode.SessionNotFound]: ':grey_question:',
  [ErrorCode.PreflightFailed]: ':x:',
  [ErrorCode.FenceTimeout]: ':x:',
  [ErrorCode.FreezeFailed]: ':x:',
  [ErrorCode.FreezeBudgetExceeded]: ':hourglass:',
  [ErrorCode.ExecutorBusy]: ':hourglass_flowing_sand:',
  [ErrorCode.BotNotInChannel]: ':wave:',
};

/** Codes whose answer is written here rather than taken from the error's message. */
const FIXED_TEXT: Partial<Record<ErrorCode, string>> = {
  [ErrorCode.BotNotInChannel]: 'I am not in this channel, so I cannot post the status message: invite me with `/invite @pgcutover`, then run the command again. Nothing was started.',
};

/** Codes whose message is not meant for the channel (internal detail): shown generically with a reference. */
const GENERIC: ReadonlySet<ErrorCode> = new Set<ErrorCode>([ErrorCode.Internal, ErrorCode.ConfigInvalid]);

/** Codes that are ordinary refusals (logged at info, not as errors). */
const EXPECTED: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCode.CommandInvalid,
  ErrorCode.ProfileNotFound,
  ErrorCode.ProfileNotAllowedHere,
  ErrorCode.NotAuthorized,
  ErrorCode.GateRefused,
  ErrorCode.ApprovalExpired,
  ErrorCode.SessionConflict,
  ErrorCode.InvalidTransition,
  ErrorCode.SessionAlreadyActive,
  ErrorCode.SessionNotFound,
  ErrorCode.BotNotInChannel,
]);

export function errorReply(error: unknown, log: Logger, context: Record<string, unknown> = {}): ErrorReply {
  if (error instanceof PreflightRefused) {
    log.info({ code: error.code, ...error.details, ...context }, error.message);
    return { text: preflightRefusedText(error) };
  }
  const coded: CodedError = asCodedError(error);
  if (GENERIC.has(coded.code)) {
    const reference = randomBytes(4).toString('hex');
    log.error({ err: error, reference, code: coded.code, ...context }, 'unexpected error answered in Slack');
    return {
      text: `:boom: Something went wrong on our side (reference \`${reference}\`). Nothing more was done; ask the bot's operators to look up this reference in the logs.`,
      reference,
    };
  }
  if (EXPECTED.has(coded.code)) log.info({ code: coded.code, ...context }, coded.message);
  else log.warn({ code: coded.code, details: coded.details, ...context }, coded.message);
  return { text: `${PREFIX[coded.code] ?? ':warning:'} ${FIXED_TEXT[coded.code] ?? oneParagraph(coded.message)}` };
}

/** Slack shows the first 3000 characters of a section; error messages stay short and single-paragraph. */
function oneParagraph(message: string): string {
  const trimmed = message.trim();
  return trimmed.length > 1500 ? `${trimmed.slice(0, 1500)}…` : trimmed;
}

const mention = (userId: string) => (userId === 'bot' ? 'the bot' : `<@${userId}>`);
const capitalise = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);
const GATE_NAME = { freeze: 'write freeze', switch: 'switch to the target' } as const;
const LEVEL_ICON = { info: ':information_source:', warning: ':warning:', error: ':rotating_light:' } as const;

/** One line in the session's thread; `broadcast` also shows it in the channel. */
export interface ThreadLine {
  text: string;
  broadcast: boolean;
}

/** The thread line of a fact, or null for facts only the audit log keeps. */
export function factLine(fact: Fact): ThreadLine | null {
  const line = (text: string, broadcast = false): ThreadLine => ({ text, broadcast });
  const who = mention(fact.actor);
  switch (fact.type) {
    case 'session_started':
      return line(`:rocket: ${who} started a migration of *${fact.profile}*.`);
    case 'migration_started':
      return line(`:arrows_counterclockwise: DigitalOcean's online migration is running (\`${fact.migrationId}\`).`);
    case 'refused':
      return fact.quiet ? null : line(`:no_entry: ${who} tried to ${fact.action.replace('_', ' ')}: refused, ${fact.reason}.`);
    case 'gate_requested':
      return line(`:raising_hand: ${who} requested the ${GATE_NAME[fact.gate]}. Needs approval by ${fact.approverHint} before ${slackDate(fact.expiresAt, '{time}')}.`);
    case 'gate_withdrawn':
      return line(`:leftwards_arrow_with_hook: ${who} withdrew the ${fact.gate} request of ${mention(fact.requestedBy)}.`);
    case 'gate_approved':
      return line(approvalText(fact));
    case 'freeze_refused':
      return line(`:no_entry: Writes were not frozen: ${fact.reason}`);
    case 'frozen':
      return line(
        `:ice_cube: Writes are frozen (budget ${fact.budgetSeconds} s; they resume on the source by themselves when it runs out). Requested by ${mention(fact.requestedBy)}, approved by ${mention(fact.approvedBy)}.`,
      );
    case 'awaiting_switch':
      return line(`:hourglass_flowing_sand: The fence is proven. Approve the switch within ${fact.secondsLeft} s, or writes resume on the source by themselves.`);
    case 'verified':
      return line(verificationText(fact.verification), fact.verification.outcome === 'different');
    case 'switched': {
      const recovered = fact.recovered ? ' After a restart I completed the switch that was under way.' : '';
      if (!fact.parameters) {
        const ahead = fact.aheadOfTime ? ' (switch approved ahead of time)' : '';
        return line(`:twisted_rightwards_arrows: Switched: writes go to the target \`${fact.targetDatabase}\`. Writes were frozen for ${fact.frozenMs ?? '?'} ms${predicted(fact.predictedFreezeMs)}${ahead}.${recovered}`, fact.recovered);
      }
      const p = fact.parameters;
      return line(
        [
          `:twisted_rightwards_arrows: Switched: the DigitalOcean migration is stopped and the target is ready; the source stays read-only.${recovered}`,
          `Point your application at: host ${p.host}, port ${p.port}, database ${p.database}, user ${p.user}, password ${p.maskedPassword} (full value in the DigitalOcean control panel), sslmode ${p.sslmode}.`,
        ].join('\n'),
        fact.recovered,
      );
    }
    case 'replicated_back':
      if (fact.outcome === 'on') {
        return line(':repeat: Replicating back: every write made on the target from the switch point on is carried to the source, and the DigitalOcean migration is stopped. A rollback now loses nothing.');
      }
      return line(
        `:warning: ${fact.outcome === 'failed' ? 'Replicating back failed' : 'Not replicating back'}: ${fact.reason ?? 'unknown reason'}. A rollback would leave the writes made on the target since the switch on the target only.`,
        true,
      );
    case 'resumed': {
      const problems = fact.problems.length ? ` Problems: ${fact.problems.join('; ')}.` : '';
      if (fact.actor !== 'bot' && fact.level === 'info') return line(`:arrow_forward: ${who} resumed writes on the source; nothing was switched.${problems}`);
      return line(`${LEVEL_ICON[fact.level]} ${capitalise(fact.reason)}. Writes resumed on the source; nothing was switched.${problems}`, fact.level !== 'info');
    }
    case 'resume_failed':
      return line(`:rotating_light: ${capitalise(fact.reason)}. I could NOT resume writes on the source: ${fact.problems.join('; ')}. I keep retrying; check the proxy now.`, true);
    case 'rolled_back': {
      const since = fact.switchedAt ? ` (switched at ${slackDate(fact.switchedAt)})` : '';
      const moved = fact.strategy === 'proxy' ? 'writes go to the source again' : 'writes are allowed on the source again; point your applications back to it';
      if (fact.carriedBack) {
        return line(`:leftwards_arrow_with_hook: Rolled back by ${who}: ${moved}. Every write made on the target since the switch${since} was on the source before writes went back (reverse fence proven), and the source's sequences are past every id the target handed out. Replication is stopped both ways; *Abort* ends the session.`, true);
      }
      return line(`:leftwards_arrow_with_hook: Rolled back by ${who}: ${moved}. Writes made on the target since the switch${since} are NOT on the source.`, true);
    }
    case 'finished':
      return line(`:checkered_flag: ${summaryText(fact.summary)}`);
    case 'aborted':
      if (fact.noMigrationId) {
        return line(
          `:octagonal_sign: Aborted by ${who}: writes go to the source. This session never recorded a DigitalOcean migration, so I stopped none; if one runs on the cluster and is yours, stop it in the DigitalOcean control panel.`,
          true,
        );
      }
      return line(`:octagonal_sign: Aborted by ${who}: writes go to the source, the DigitalOcean migration is stopped.`, true);
    case 'failed':
      return line(`:x: ${capitalise(fact.action)} failed: ${fact.message}`, true);
    case 'recovered':
      return line(`:warning: After a restart I found a step under way: ${fact.reason}.`, true);
    case 'report_schedule_set':
      return line(`:calendar: ${who} set lag reports to *${fact.schedule}*.`);
  }
}

function approvalText(fact: Extract<Fact, { type: 'gate_approved' }>): string {
  const who = mention(fact.actor);
  const until = fact.validUntil ? `, valid until ${slackDate(fact.validUntil, '{time}')}` : '';
  if (fact.gate === 'freeze') {
    if (fact.runs === 'with_switch') {
      return `:white_check_mark: ${who} approved the write freeze${fact.action === 'freeze_now' ? '' : ` requested by ${mention(fact.requestedBy)}`}${until}. Nothing is frozen yet: the cutover runs, in one go, once the switch is approved too.`;
    }
    return fact.action === 'freeze_now'
      ? `:ice_cube: ${who} is freezing writes (two-person rule off).`
      : `:white_check_mark: ${who} approved the write freeze requested by ${mention(fact.requestedBy)}; freezing now.`;
  }
  if (fact.runs === 'ahead') {
    return `:white_check_mark: ${who} approved the switch requested by ${mention(fact.requestedBy)} ahead of time${until}. It runs once writes are frozen and the fence is reached.`;
  }
  if (fact.runs === 'cutover') {
    return `:white_check_mark: ${who} approved the switch requested by ${mention(fact.requestedBy)} (typed the database name). Both gates are approved: the cutover runs now, freeze to resume in one go, and I report here when it is done.`;
  }
  return fact.action === 'switch_now'
    ? `:twisted_rightwards_arrows: ${who} confirmed the switch (typed the database name); switching now.`
    : `:white_check_mark: ${who} approved the switch requested by ${mention(fact.requestedBy)} (typed the database name); switching now.`;
}

const predicted = (ms: number | null | undefined) => (ms == null ? '' : ` (predicted ${Math.round(ms)} ms)`);

/** Source and target as of the switch point, in words: the same, or each differing table and how. */
function verificationText(v: Verification): string {
  if (v.outcome === 'not_run') return `:grey_question: The data was not compared at the switch point: ${v.reason ?? 'unknown reason'}.`;
  if (v.outcome === 'same') return `:white_check_mark: Verified at the switch point: the ${v.tables} table(s) have the same rows on source and target (counts and checksums as of the freeze).`;
  const reason = (r: Verification['differing'][number]['reasons'][number]): string => {
    switch (r.kind) {
      case 'missing-on-target':
        return 'missing on the target';
      case 'missing-on-source':
        return 'missing on the source';
      case 'row-count':
        return `${r.source} rows on the source, ${r.target} on the target`;
      case 'content':
        return 'the rows differ';
      case 'sample':
        return `the rows from ${r.from} differ`;
      default:
        return 'differs';
    }
  };
  const tables = v.differing.map((d) => `\`${d.table}\` (${d.reasons.map(reason).join(', ')})`).join('; ');
  return `:warning: Verification at the switch point found differences in ${v.differing.length} of ${v.tables} table(s): ${tables}. Finish is refused until someone looks: \`/migrate finish --acknowledge-differences\` finishes anyway, or roll back.`;
}

/** The end-of-session summary: freeze duration, writes held, lag at freeze, who requested and approved each gate. */
export function summaryText(s: CutoverSummary): string {
  if (!s.ran) return 'Finished. No cutover was run.';
  const parts = [
    `Finished. Writes were frozen for ${s.frozenMs === null ? 'an unknown time' : `${s.frozenMs} ms`}${predicted(s.predictedFreezeMs)}`,
    `writes held: ${s.writesHeld ?? 'unknown'}`,
    `lag at freeze: ${s.lagAtFreeze?.known ? `${s.lagAtFreeze.bytes} bytes` : 'unknown'}`,
    `fence: ${s.fence ? `${s.fence.method} in ${s.fence.elapsedMs} ms` : 'none'}`,
    `sequences copied: ${s.sequencesCopied ?? 0}`,
  ];
  for (const gate of ['freeze', 'switch'] as const) {
    const g = s.approvals?.[gate];
    if (g?.requestedBy) parts.push(`${gate} requested by ${mention(g.requestedBy)}`);
    if (g?.approvedBy) parts.push(`${gate} approved by ${mention(g.approvedBy)}${g.aheadOfTime ? ' (ahead of time)' : ''}`);
  }
  return `${parts.join('; ')}.`;
}

/** The answer to a `/migrate start` that preflight refused: each failing check with its fix. */
function preflightRefusedText(error: PreflightRefused): string {
  return [`${PREFIX[ErrorCode.PreflightFailed]} ${error.message}`, renderPreflight(error.failed), 'Fix these, then start again (`--dry-run` checks without starting).'].join('\n');
}

/** The answer to `/migrate start <profile> --dry-run`. */
export function dryRunText(run: DryRun): string {
  const failed = run.preflight.filter((i) => i.status === 'fail').length;
  const gates = run.profile.gates;
  return [
    `:test_tube: *Dry run of ${run.profileName}*: nothing was changed.`,
    `*Preflight* (${failed ? `${failed} failing` : 'all passing'})`,
    renderPreflight(run.preflight),
    `*The cutover would run these steps*`,
    renderPlan(run.plan),
    `Gates: freeze and switch need ${gates.twoPersonRule ? 'a second person' : 'one person'}; approvals are valid ${gates.approvalExpiryMinutes} min; freeze budget ${run.profile.freeze.budgetSeconds} s.`,
  ].join('\n');
}

function setupPlanLine(plan: SetupPlan): string {
  const command = `\`/migrate setup ${plan.action} --confirm\``;
  if (plan.action === 'app-user') {
    if (!plan.applicable) return '• application user: not needed (the proxy keeps the applications\' credentials)';
    return plan.exists ? `• application user \`${plan.user}\` exists on the target: its parameters are handed out at the switch` : `• create the application user \`${plan.user}\` on the target (${command}); its parameters, not doadmin's, are handed out at the switch`;
  }
  const who = (list: { who: string; address: string }[]) => list.map((w) => `${w.who} ${w.address}`).join(', ');
  return [
    plan.add.length ? `• append to the trusted sources: ${who(plan.add)} (${command}; the ${plan.existingRules} existing rule(s) are kept)` : '• trusted sources: nothing to add',
    ...(plan.admitted.length ? [`  already admitted: ${who(plan.admitted)}`] : []),
    ...(plan.notPublic.length ? [`  not public, so not added: ${who(plan.notPublic)}`] : []),
    ...(plan.add.length + plan.admitted.length + plan.notPublic.length === 0 ? ['  name the public addresses in digitalocean.publicAddresses (proxy, bot) to have them added'] : []),
  ].join('\n');
}

/** The answer to `/migrate setup <action>` without `--confirm`: the plan. */
export function setupPlanText(profileName: string, plan: SetupPlan): string {
  const next = planChanges(plan) ? `Run \`/migrate setup ${plan.action} --confirm\` to do it (operators).` : 'Nothing to do.';
  return [`:clipboard: *Set-up of \`${profileName}\`'s cluster*, nothing changed yet:`, setupPlanLine(plan), next].join('\n');
}

/** The answer to `/migrate setup <action> --confirm`: what was done; a password only ever masked. */
export function setupDoneText(profileName: string, outcome: SetupOutcome): string {
  if (outcome.action === 'trusted-sources') {
    return outcome.added.length
      ? `:white_check_mark: Added to \`${profileName}\`'s trusted sources: ${outcome.added.join(', ')} (every existing rule kept).`
      : `:white_check_mark: \`${profileName}\`'s trusted sources already admit every address named; nothing changed.`;
  }
  const p = outcome.parameters;
  return [
    outcome.created ? `:white_check_mark: Created the application user \`${p.user}\` on \`${profileName}\`'s target.` : `:information_source: The application user \`${p.user}\` already exists.`,
    `Applications will connect with: host ${p.host}, port ${p.port}, database ${p.database}, user ${p.user}, password ${MASKED} (full value in the DigitalOcean control panel), sslmode ${p.sslmode}${p.sslmode === 'verify-full' ? " with the cluster's CA certificate (control panel, or `doctl databases get-ca`)" : ''}.`,
  ].join('\n');
}
