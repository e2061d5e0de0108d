/**
 * Buttons on the status message. Ack at once; the value (`sessionId:version`) is parsed with zod;
 * the switch buttons open the typed-name modal, the others call the session actions. Errors and
 * refusals are ephemeral to the person who clicked.
 */
import type { BlockAction, ButtonAction as SlackButtonAction } from '@slack/bolt';
import { z } from 'zod';
import { approvalRuns } from '../../../domain/gates.js';
import { CodedError, ErrorCode } from '../../../errors.js';
import { ACTION_PREFIX, buttonValueSchema, MODAL_ACTIONS, parseActionId, switchModal } from '../blocks.js';
import type { BoltApp, RequestContext } from '../bolt-app.js';
import { channelIdSchema, firstProblem, teamIdSchema, userIdSchema } from '../slack-ids.js';
import type { SlackSurface } from '../surface.js';
import { errorReply } from '../texts.js';
import { firstDelivery, respondWithRetry } from './request-guards.js';

const clickSchema = z.object({ user: userIdSchema, channel: channelIdSchema, team: teamIdSchema.optional() });

export function registerActions(app: BoltApp, surface: SlackSurface): void {
  const pattern = new RegExp(`^${ACTION_PREFIX.replace('.', '\\.')}`);
  app.action<BlockAction<SlackButtonAction>>({ type: 'block_actions', action_id: pattern }, async ({ ack, body, action, client, context, respond }) => {
    await ack();
    const ids = clickSchema.safeParse({ user: body.user?.id, channel: body.channel?.id ?? body.container?.channel_id, team: body.team?.id });
    if (!ids.success) {
      // No id to address an ephemeral to: the answer goes back through the click's response_url, if any.
      const problem = new CodedError(ErrorCode.CommandInvalid, `This click is not one Slack would send: ${firstProblem(ids.error, { user: 'the user id', channel: 'the channel id', team: 'the team id' })}. Nothing was done.`);
      const text = errorReply(problem, surface.log.child({ name: 'slack' })).text;
      if (respond) await respondWithRetry(respond, { response_type: 'ephemeral', replace_original: false, text }).catch(() => undefined);
      return;
    }
    const userId = ids.data.user;
    const channelId = ids.data.channel;
    const log = surface.log.child({ name: 'slack', channel: channelId });
    let sessionId: string | undefined;
    try {
      const kind = parseActionId(action.action_id);
      const value = buttonValueSchema.safeParse(action.value);
      if (!kind || !value.success) {
        throw new CodedError(ErrorCode.CommandInvalid, 'That button is not one this bot understands any more; use the current status message.');
      }
      const ref = { sessionId: value.data.sessionId, version: value.data.version };
      if (!(await firstDelivery(surface.idempotency, context as RequestContext, surface.now()))) {
        throw new CodedError(ErrorCode.SessionConflict, 'This click was already received; it is not done twice. Watch the status message.');
      }
      const clicked = await surface.sessions.get(ref.sessionId);
      if (clicked && clicked.channelId !== channelId) {
        throw new CodedError(ErrorCode.GateRefused, 'That button belongs to a migration session of another channel; use the status message there.');
      }
      sessionId = ref.sessionId;
      log.info({ session: ref.sessionId, action: kind, version: ref.version }, 'button clicked');
      if (MODAL_ACTIONS.includes(kind)) {
        const checked = await surface.people.check(kind, ref, userId);
        await client.views.open({
          trigger_id: body.trigger_id,
          view: switchModal({
            metadata: { sessionId: ref.sessionId, version: ref.version, action: kind as 'switch_approve' | 'switch_now' | 'switch_run', channelId: checked.session.channelId },
            profile: checked.profile,
            session: checked.session,
            request: checked.requests.switch,
            runs: approvalRuns('switch', checked.profile.gates.flow, checked.session.state, checked.requests, surface.now()),
          }) as never,
        });
        return;
      }
      await surface.actions.perform(kind, ref, userId, { retry: (context.retryNum ?? 0) > 0 });
    } catch (error) {
      const text = errorReply(error, log, { action: action.action_id }).text;
      if (!channelId) return;
      await client.chat.postEphemeral({ channel: channelId, user: userId, text }).catch((err: unknown) => log.warn({ err }, 'ephemeral reply failed'));
    } finally {
      if (sessionId) await surface.publisher.settled(sessionId);
    }
  });
}
