/**
 * Block Kit for the live status message, its buttons, and the typed-confirmation modal. Pure
 * rendering: no Slack calls. Button values and modal metadata are parsed back with zod.
 */
import { z } from 'zod';
import type { PlanStep, PreflightItem } from '../../app/session-operations.js';
import type { Profile } from '../../config/profiles.js';
import { USER_ACTIONS, availableActions, gateStatus, type ApprovalRuns, type Gate, type GateRequest, type UserAction } from '../../domain/gates.js';
import { databaseLagLine, formatBytes, type DoView, type TrendDirection } from '../../domain/report.js';
import { hoursLeft, type RollbackWindowState } from '../../domain/rollback-window.js';
import { describeState, type Session } from '../../domain/session.js';
import type { LagSample } from '../../domain/ports/replication.js';
import { channelIdSchema } from './slack-ids.js';

/** Block Kit is loosely typed here on purpose: the fake Slack in tests checks the real JSON. */
export type Block = Record<string, unknown>;

export const ACTION_PREFIX = 'pgc.';
export const SWITCH_MODAL_CALLBACK = 'pgc.switch_confirm';
export const SWITCH_MODAL_BLOCK = 'db_name';
export const SWITCH_MODAL_INPUT = 'typed';

/** The user actions that have a button: all but those only a command can ask for. */
export type ButtonAction = Exclude<UserAction, 'start' | 'report'>;
export const BUTTON_ACTIONS = USER_ACTIONS.filter((a): a is ButtonAction => a !== 'start' && a !== 'report');

/** Actions whose button opens the typed-name modal instead of acting at once. */
export const MODAL_ACTIONS: readonly ButtonAction[] = ['switch_approve', 'switch_now', 'switch_run'];

export const actionId = (action: ButtonAction) => `${ACTION_PREFIX}${action}`;

const actionIdSchema = z
  .string()
  .refine((id) => id.startsWith(ACTION_PREFIX))
  .transform((id) => id.slice(ACTION_PREFIX.length))
  .pipe(z.enum(BUTTON_ACTIONS));

export function parseActionId(id: string): ButtonAction | undefined {
  const parsed = actionIdSchema.safeParse(id);
  return parsed.success ? parsed.data : undefined;
}

/** `sessionId:version`, the only thing a button carries (values are visible in the message JSON). */
export const buttonValueSchema = z
  .string()
  // The uuid's exact layout: a 36-character run of dashes is no session id and must not reach the store.
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:\d{1,9}$/)
  .transform((value) => {
    const [sessionId, version] = value.split(':');
    return { sessionId: sessionId as string, version: Number(version) };
  });

export const encodeButtonValue = (session: Pick<Session, 'id' | 'version'>) => `${session.id}:${session.version}`;

export const modalMetadataSchema = z.object({
  sessionId: z.uuid(),
  version: z.number().int().positive(),
  action: z.enum(['switch_approve', 'switch_now', 'switch_run']),
  channelId: channelIdSchema,
});
export type ModalMetadata = z.infer<typeof modalMetadataSchema>;

const BUTTONS: Record<ButtonAction, { text: string; style?: 'primary' | 'danger'; confirm?: { title: string; text: string; confirm: string } }> = {
  freeze_request: { text: 'Request freeze' },
  freeze_now: {
    text: 'Freeze writes',
    style: 'danger',
    confirm: { title: 'Freeze writes?', text: 'Writes to the source stop now, for at most the freeze budget.', confirm: 'Freeze writes' },
  },
  freeze_approve: {
    text: 'Approve & freeze writes',
    style: 'danger',
    confirm: {
      title: 'Freeze writes?',
      text: 'Approving freezes writes to the source now, for at most the freeze budget.',
      confirm: 'Freeze writes',
    },
  },
  freeze_withdraw: { text: 'Withdraw freeze request' },
  switch_request: { text: 'Request switch' },
  switch_approve: { text: 'Approve switch…', style: 'primary' },
  switch_now: { text: 'Switch to target…', style: 'primary' },
  switch_run: { text: 'Switch to target…', style: 'primary' },
  switch_withdraw: { text: 'Withdraw switch request' },
  resume: {
    text: 'Resume writes',
    confirm: { title: 'Resume writes?', text: 'Writes resume on the source; the switch is not made.', confirm: 'Resume writes' },
  },
  abort: {
    text: 'Abort',
    style: 'danger',
    confirm: {
      title: 'Abort the migration?',
      text: 'Ends the session without switching: writes resume on the source and the DigitalOcean migration stops.',
      confirm: 'Abort',
    },
  },
  rollback: {
    text: 'Roll back',
    style: 'danger',
    confirm: {
      title: 'Roll back to the source?',
      text: 'Freezes writes on the target, proves that every write made on the target since the switch is on the source, moves the source\'s sequences past the target\'s, points traffic back to the source and resumes writes there. Only when the thread says "Not replicating back", or the rollback window has ended: writes made on the target since the switch stay on the target only.',
      confirm: 'Roll back',
    },
  },
  finish: {
    text: 'Finish',
    style: 'primary',
    confirm: {
      title: 'Finish the migration?',
      text: 'Stops the DigitalOcean online migration and ends the session. The target stays in use.',
      confirm: 'Finish',
    },
  },
};

export const plain = (text: string) => ({ type: 'plain_text', text, emoji: true });
export const mrkdwn = (text: string) => ({ type: 'mrkdwn', text });

export function button(action: ButtonAction, session: Pick<Session, 'id' | 'version'>): Block {
  const spec = BUTTONS[action];
  return {
    type: 'button',
    action_id: actionId(action),
    text: plain(spec.text),
    value: encodeButtonValue(session),
    ...(spec.style ? { style: spec.style } : {}),
    ...(spec.confirm
      ? {
          confirm: {
            title: plain(spec.confirm.title),
            text: mrkdwn(spec.confirm.text),
            confirm: plain(spec.confirm.confirm),
            deny: plain('Cancel'),
            ...(spec.style === 'danger' ? { style: 'danger' } : {}),
          },
        }
      : {}),
  };
}

export const slackDate = (d: Date, format = '{date_short_pretty} {time_secs}') =>
  `<!date^${Math.floor(d.getTime() / 1000)}^${format}|${d.toISOString()}>`;

export type LagTrend = TrendDirection;

export function describeLag(lag: LagSample | undefined, trend: LagTrend = 'unknown'): string {
  if (!lag) return '—';
  if (!lag.known) return `unknown (${lag.reason})`;
  const arrow = { rising: ' ↗ rising', falling: ' ↘ falling', steady: ' → steady', unknown: '' }[trend];
  const seconds = lag.seconds === null ? 'time unknown' : `~${lag.seconds.toFixed(1)} s`;
  const perDatabase = databaseLagLine(lag.databases);
  return `${formatBytes(lag.bytes)}, ${seconds}${arrow}${perDatabase ? `\n${perDatabase}` : ''}`;
}

export interface StatusView {
  session: Session;
  profile: Profile | undefined;
  requests: Partial<Record<Gate, GateRequest>>;
  /** When writes were frozen (for the budget countdown). */
  frozenAt?: Date | undefined;
  lag?: LagSample | undefined;
  lagTrend?: LagTrend;
  reportSchedule?: string | undefined;
  /** DigitalOcean's status of the migration and when it was seen, when the caller has it (a lag report). */
  digitalocean?: { view: DoView; at: Date } | undefined;
  /** A switched session that replicates back: until when a rollback loses nothing, and the reverse slot as last read. */
  rollbackWindow?: Pick<RollbackWindowState, 'endsAt' | 'endedAt' | 'reading'> | undefined;
  now: Date;
}

export const STATE_EMOJI: Record<Session['state'], string> = {
  created: ':hourglass_flowing_sand:',
  syncing: ':arrows_counterclockwise:',
  frozen: ':ice_cube:',
  switched: ':twisted_rightwards_arrows:',
  finished: ':white_check_mark:',
  aborted: ':octagonal_sign:',
  rolled_back: ':leftwards_arrow_with_hook:',
  failed: ':x:',
};

/** What the request or approval was given on: the predicted freeze and the lag then. */
function boundTo(request: GateRequest | undefined): string {
  const b = request?.binding;
  if (!b) return '';
  const freeze = b.predictedFreezeMs === null ? `predicted freeze unknown${b.unknown ? ` (${b.unknown})` : ''}` : `predicted freeze ≈ ${Math.round(b.predictedFreezeMs)} ms`;
  const lag = b.lagBytes === null ? '' : `, lag then ${formatBytes(b.lagBytes)}`;
  const rollback =
    b.replicatesBack === undefined ? '' : b.replicatesBack ? '; a rollback loses nothing (replicating back)' : "; a rollback would leave the target's writes on the target (not replicating back)";
  return `\n      ↳ ${freeze}${lag}${rollback}`;
}

function describeGate(gate: Gate, request: GateRequest | undefined, now: Date): string {
  const status = gateStatus(request, now);
  const name = gate === 'freeze' ? 'Freeze' : 'Switch';
  switch (status) {
    case 'none':
      return `${name}: not requested`;
    case 'pending':
      return `${name}: requested by <@${request?.requestedBy}>, awaiting approval (expires ${slackDate(request!.requestExpiresAt, '{time}')})${boundTo(request)}`;
    case 'request_expired':
      return `${name}: request by <@${request?.requestedBy}> expired; request again`;
    case 'approved':
      return `${name}: :white_check_mark: approved by <@${request?.approvedBy}> (requested by <@${request?.requestedBy}>), valid until ${slackDate(request!.approvalExpiresAt!, '{time}')}${boundTo(request)}`;
    case 'approval_expired':
      return `${name}: approval by <@${request?.approvedBy}> expired; request again`;
  }
}

function sourceAndTarget(profile: Profile | undefined): string {
  if (!profile) return 'profile no longer configured';
  const s = profile.source;
  return `\`${s.host}:${s.port}/${s.database}\` → DigitalOcean \`${profile.digitalocean.clusterUuid.slice(0, 8)}…/${profile.digitalocean.database}\``;
}

function freezeLine(view: StatusView): string {
  const { session, profile, frozenAt, now } = view;
  if (session.state !== 'frozen') return session.state === 'switched' ? 'writes go to the target' : 'writes flowing on the source';
  const budget = profile?.freeze.budgetSeconds ?? 0;
  if (!frozenAt) return `:ice_cube: *writes frozen* (budget ${budget} s)`;
  const deadline = new Date(frozenAt.getTime() + budget * 1000);
  const left = Math.max(0, Math.round((deadline.getTime() - now.getTime()) / 1000));
  return `:ice_cube: *writes frozen* since ${slackDate(frozenAt, '{time_secs}')}: ${left} s of the ${budget} s budget left (writes resume by themselves at ${slackDate(deadline, '{time_secs}')})`;
}

/** How long a rollback loses nothing, and what replicating back keeps on the target. */
function rollbackLine(window: NonNullable<StatusView['rollbackWindow']>, now: Date): string {
  const at = (d: Date) => slackDate(d, '{date_short_pretty} {time}');
  if (window.endedAt) return `window ended ${at(window.endedAt)}: replicating back stopped, a rollback leaves the target's writes on the target`;
  const left = window.endsAt.getTime() - now.getTime();
  if (left <= 0) return `window ended ${at(window.endsAt)}: replicating back is being removed`;
  const more = left >= 3_600_000 ? `${hoursLeft(window.endsAt, now)} h` : `${Math.ceil(left / 60_000)} min`;
  const r = window.reading;
  const stream = !r || r.streaming ? 'replicating back' : r.slot ? 'replicating back, *not streaming*' : '*the reverse slot is gone*';
  const retained = r && r.retainedWalBytes !== null ? `, ${formatBytes(r.retainedWalBytes)} retained` : '';
  return `without loss possible for ${more} more, until ${at(window.endsAt)} (${stream}${retained})`;
}

/** The migration id, with DigitalOcean's own status only when it was actually seen (never inferred from our state). */
function describeMigration(session: Session, seen: StatusView['digitalocean']): string {
  if (!session.doMigrationId) return 'not started';
  const id = `\`${session.doMigrationId}\``;
  if (!seen?.view.known) return id;
  const status = seen.view.status === 'none' ? 'no online migration' : seen.view.status;
  return `${id} (DigitalOcean: ${status}, ${slackDate(seen.at, '{time}')})`;
}

/** The one message a session owns in its channel. */
export function renderStatus(view: StatusView): { text: string; blocks: Block[] } {
  const { session, profile, requests, now } = view;
  const title = `${STATE_EMOJI[session.state]} Migration ${session.profile}: ${describeState(session.state)}`;
  const gates = profile?.gates;
  const fields = [
    `*Profile*\n${session.profile} (${session.strategy})`,
    `*Source → target*\n${sourceAndTarget(profile)}`,
    `*DigitalOcean migration*\n${describeMigration(session, view.digitalocean)}`,
    `*Lag*\n${describeLag(view.lag, view.lagTrend)}`,
    `*Writes*\n${freezeLine(view)}`,
    `*Started by*\n<@${session.startedBy}> ${slackDate(session.createdAt)}`,
    ...(session.state === 'switched' && view.rollbackWindow ? [`*Rollback*\n${rollbackLine(view.rollbackWindow, now)}`] : []),
  ];
  const blocks: Block[] = [
    { type: 'header', text: plain(title.slice(0, 150)) },
    { type: 'section', fields: fields.map(mrkdwn) },
    {
      type: 'section',
      text: mrkdwn(
        [
          `*Gates* (two-person rule ${gates?.twoPersonRule ? 'on' : 'off'}; approvals valid ${gates?.approvalExpiryMinutes ?? '?'} min)`,
          `• ${describeGate('freeze', requests.freeze, now)}`,
          `• ${describeGate('switch', requests.switch, now)}`,
        ].join('\n'),
      ),
    },
  ];
  const actions = profile ? availableActions(session.state, profile.gates, requests, now) : [];
  const buttons = actions.filter((a): a is ButtonAction => (BUTTON_ACTIONS as readonly string[]).includes(a));
  if (buttons.length > 0) {
    blocks.push({ type: 'actions', block_id: 'pgc_actions', elements: buttons.map((a) => button(a, session)) });
  }
  blocks.push({
    type: 'context',
    elements: [
      mrkdwn(
        `Session \`${session.id.slice(0, 8)}\` · v${session.version} · reports ${view.reportSchedule ?? profile?.reports.schedule ?? 'default'} · updated ${slackDate(now)}`,
      ),
    ],
  });
  return { text: title, blocks };
}

export function switchModal(input: {
  metadata: ModalMetadata;
  profile: Profile;
  session: Session;
  request: GateRequest | undefined;
  /** What approving starts (`approvalRuns`). */
  runs: ApprovalRuns;
}): Record<string, unknown> {
  const { metadata, profile, session, request, runs } = input;
  const approving: Record<ApprovalRuns, string> = {
    now: 'You approve the switch and it runs now.',
    cutover:
      'The freeze is approved already: you approve the switch and the whole cutover runs now, in one go (freeze, fence, sequences, repoint, resume), within the freeze budget.',
    ahead: 'You approve the switch ahead of time: it runs once writes are frozen and the fence is reached, while the approval is valid.',
    with_switch: 'You approve the switch.',
  };
  const what = metadata.action === 'switch_approve' ? approving[runs] : 'The switch runs now.';
  return {
    type: 'modal',
    callback_id: SWITCH_MODAL_CALLBACK,
    private_metadata: JSON.stringify(metadata),
    title: plain('Switch to target'),
    submit: plain(metadata.action === 'switch_approve' ? 'Approve switch' : 'Switch'),
    close: plain('Cancel'),
    blocks: [
      {
        type: 'section',
        text: mrkdwn(
          [
            `*${session.profile}*: ${sourceAndTarget(profile)}`,
            request ? `Requested by <@${request.requestedBy}>.` : '',
            what,
            `Traffic moves to the target (strategy: ${profile.strategy}). To confirm, type the target database name *${profile.digitalocean.database}*.`,
          ]
            .filter(Boolean)
            .join('\n'),
        ),
      },
      {
        type: 'input',
        block_id: SWITCH_MODAL_BLOCK,
        label: plain('Target database name'),
        element: { type: 'plain_text_input', action_id: SWITCH_MODAL_INPUT, min_length: 1, max_length: 200 },
      },
    ],
  };
}

export function renderPreflight(items: PreflightItem[]): string {
  const icon = { pass: ':white_check_mark:', warn: ':warning:', fail: ':x:' } as const;
  if (items.length === 0) return '_no checks_';
  return items
    .map((i) => `${icon[i.status]} *${i.check}*: ${i.detail}${i.fix ? `\n      ↳ fix: ${i.fix}` : ''}`)
    .join('\n');
}

export function renderPlan(steps: PlanStep[]): string {
  return steps.map((s, n) => `${n + 1}. *${s.name}*: ${s.description}`).join('\n');
}
