/**
 * `/migrate …`: parse with zod, ack within Slack's 3 seconds (quick answers go in the ack, slow work
 * follows and reports through response_url), dedupe retries and double submits of changing commands.
 */
import type { RespondArguments } from '@slack/bolt';
import { z } from 'zod';
import { helpText, isMutating, parseCommand, USAGE_LINE, type Command } from '../../../domain/commands.js';
import { describeState } from '../../../domain/session.js';
import type { AuditRecord } from '../../../domain/ports/stores.js';
import { CodedError, ErrorCode } from '../../../errors.js';
import { describeLag, renderPreflight, slackDate } from '../blocks.js';
import { dryRunText, errorReply, setupDoneText, setupPlanText } from '../texts.js';
import type { BoltApp, RequestContext } from '../bolt-app.js';
import { channelIdSchema, firstProblem, teamIdSchema, userIdSchema } from '../slack-ids.js';
import type { SlackSurface } from '../surface.js';
import { firstDelivery, respondWithRetry } from './request-guards.js';

/** Identical changing commands from one person in one channel within this window count as one. */
export const COMMAND_DEDUPE_WINDOW_MS = 30_000;

/** What a slash command must carry before anything reads it; Slack always sends all of it. */
const commandSchema = z.object({
  user_id: userIdSchema,
  channel_id: channelIdSchema,
  team_id: teamIdSchema,
  text: z.string().optional(),
  response_url: z.url({ message: 'is not a URL' }),
});
const FIELD_NAMES = { user_id: 'the user id', channel_id: 'the channel id', team_id: 'the team id', text: 'the text', response_url: 'the response_url' };

const ephemeral = (text: string, extra: Partial<RespondArguments> = {}): RespondArguments =>
  ({ response_type: 'ephemeral', text, ...extra }) as RespondArguments;

export function registerCommands(app: BoltApp, deps: SlackSurface): void {
  app.command('/migrate', async ({ command, ack, respond, context }) => {
    const checked = commandSchema.safeParse(command);
    if (!checked.success) {
      const problem = new CodedError(ErrorCode.CommandInvalid, `This request is not a slash command as Slack sends it: ${firstProblem(checked.error, FIELD_NAMES)}. Nothing was done.`);
      await ack(ephemeral(errorReply(problem, deps.log.child({ name: 'slack' })).text));
      return;
    }
    const channelId = checked.data.channel_id;
    const userId = checked.data.user_id;
    const text = (checked.data.text ?? '').trim().replace(/\s+/g, ' ');
    const log = deps.log.child({ name: 'slack', channel: channelId });
    let acked = false;
    const reply = async (message: RespondArguments) => {
      if (!acked) {
        acked = true;
        await ack(message);
      } else {
        await respondWithRetry(respond, message).catch((error: unknown) => log.warn({ err: error }, 'respond() failed'));
      }
    };
    let dedupeKey: string | undefined;
    try {
      const parsed = parseCommand(text);
      if (!parsed.ok) {
        const suggestion = parsed.suggestion ? ` Did you mean \`/migrate ${parsed.suggestion}\`?` : '';
        await reply(ephemeral(`:grey_question: ${parsed.problem}.${suggestion}\nUsage: \`${parsed.usage}\`\nAll commands: \`/migrate help\``));
        return;
      }
      const cmd = parsed.command;
      if (isMutating(cmd)) {
        // The same signed bytes again (a replay, or Slack's retry) count once for as long as the signature is valid.
        if (!(await firstDelivery(deps.idempotency, context as RequestContext, deps.now()))) {
          log.warn({ retryNum: context.retryNum, command: cmd.kind }, 'repeated signed request ignored');
          await reply(ephemeral(`:repeat: \`/migrate ${text}\` was already received${context.retryNum ? ' (Slack retried it)' : ''}; it is not done twice. Watch the status message.`));
          return;
        }
        dedupeKey = `command:${channelId}:${userId}:${text.toLowerCase()}`;
        if (!(await deps.idempotency.claim(dedupeKey, deps.now(), COMMAND_DEDUPE_WINDOW_MS))) {
          dedupeKey = undefined;
          log.info({ retryNum: context.retryNum, command: cmd.kind }, 'duplicate command ignored');
          await reply(ephemeral(`:repeat: \`/migrate ${text}\` was already received a moment ago${context.retryNum ? ' (Slack retried it)' : ''}; it is not done twice. Watch the status message.`));
          return;
        }
      }
      const quick = await quickAnswer(cmd, channelId, deps);
      if (quick !== undefined) {
        await reply(ephemeral(quick));
        return;
      }
      await reply(ephemeral(`:hourglass_flowing_sand: Working on \`/migrate ${text}\`…`));
      const answer = await run(cmd, channelId, userId, deps, context.retryNum !== undefined && context.retryNum > 0);
      if (answer) await reply(typeof answer === 'string' ? ephemeral(answer) : answer);
    } catch (error) {
      if (dedupeKey) await deps.idempotency.release(dedupeKey).catch(() => undefined);
      await reply(ephemeral(errorReply(error, log, { command: text.split(' ')[0] }).text));
    }
  });
}

/** Answers that need no engine work, sent in the ack itself. */
async function quickAnswer(cmd: Command, channelId: string, deps: SlackSurface): Promise<string | undefined> {
  switch (cmd.kind) {
    case 'help':
      return helpText();
    case 'profiles': {
      const here = deps.start.profilesFor(channelId);
      if (here.length === 0) return `No profile may be used in this channel (${deps.config.profiles.size} configured for other channels).`;
      return [
        '*Profiles for this channel*',
        ...here.map(
          ([name, p]) =>
            `• \`${name}\`${p.description ? ` — ${p.description}` : ''} (${p.strategy}; target \`${p.digitalocean.database}\`; two-person rule ${p.gates.twoPersonRule ? 'on' : 'off'})`,
        ),
        'Start one with `/migrate start <profile>` (add `--dry-run` to only check and plan).',
      ].join('\n');
    }
    case 'history': {
      const records = await deps.audit.forChannel(channelId, 40);
      if (records.length === 0) return 'No history in this channel yet.';
      return ['*Audit trail of this channel* (latest last)', ...records.map(historyLine)].join('\n');
    }
    default:
      return undefined;
  }
}

function historyLine(r: AuditRecord): string {
  const who = r.actor === 'bot' ? 'bot' : `<@${r.actor}>`;
  const reason = typeof r.details.reason === 'string' ? `: ${r.details.reason}` : typeof r.details.message === 'string' ? `: ${r.details.message}` : '';
  const session = r.sessionId ? ` \`${r.sessionId.slice(0, 8)}\`` : '';
  return `• ${slackDate(r.at)}${session} ${who} *${r.action}* → ${r.outcome}${reason}`;
}

async function run(
  cmd: Command,
  channelId: string,
  userId: string,
  deps: SlackSurface,
  retry: boolean,
): Promise<string | RespondArguments | undefined> {
  const { start, actions } = deps;
  const current = async () => {
    const session = await start.active(channelId);
    return { sessionId: session.id, version: session.version };
  };
  // The person's answer comes after the thread lines their command caused.
  const perform: typeof actions.perform = async (action, ref, user, options) => {
    try {
      return await actions.perform(action, ref, user, options);
    } finally {
      await deps.publisher.settled(ref.sessionId);
    }
  };
  switch (cmd.kind) {
    case 'start': {
      if (cmd.dryRun) return dryRunText(await start.dryRun(channelId, userId, cmd.profile));
      const session = await start.start(channelId, userId, cmd.profile);
      await deps.publisher.settled(session.id);
      return `:white_check_mark: Session for \`${cmd.profile}\` started (${describeState(session.state)}); its status message is in the channel.`;
    }
    case 'status': {
      // One view, rendered once: the answer here, and the channel's message updated from it in the background.
      const shown = await deps.status.show(channelId);
      if (shown) return ephemeral(shown.text, { blocks: shown.blocks.filter((b) => b.type !== 'actions') as never });
      const last = (await deps.sessions.listForChannel(channelId, 1))[0];
      return last
        ? `No active session. The last one (\`${last.profile}\`, ${slackDate(last.createdAt)}) ended: ${describeState(last.state)}.`
        : 'No migration session in this channel yet; see `/migrate profiles`.';
    }
    case 'lag': {
      const session = await start.active(channelId);
      return `*Lag* of \`${session.profile}\`: ${describeLag(await deps.operations.lag(session.id))}`;
    }
    case 'preflight': {
      const session = await start.active(channelId);
      return `*Preflight* of \`${session.profile}\`\n${renderPreflight(await deps.operations.preflight(session))}`;
    }
    case 'freeze':
      await perform('freeze_request', await current(), userId, { retry });
      return ':raising_hand: Freeze requested; the approval button is on the status message.';
    case 'switch':
      await perform('switch_request', await current(), userId, { retry });
      return ':raising_hand: Switch requested; an approver confirms it on the status message.';
    case 'resume':
    case 'rollback':
    case 'abort':
      await perform(cmd.kind, await current(), userId, { retry });
      return undefined;
    case 'finish':
      await perform('finish', await current(), userId, { retry, acknowledgeDifferences: cmd.acknowledgeDifferences });
      return undefined;
    case 'report':
      await start.setReport(channelId, userId, cmd.schedule);
      return `:calendar: Reports: ${cmd.schedule.text}.`;
    case 'setup': {
      if (!cmd.confirm) {
        const shown = await deps.setup.show(channelId, userId, cmd.action);
        return setupPlanText(shown.profileName, shown.plan);
      }
      const done = await deps.setup.run(channelId, userId, cmd.action);
      return setupDoneText(done.profileName, done.outcome);
    }
    case 'help':
    case 'profiles':
    case 'history':
      return USAGE_LINE;
  }
}
