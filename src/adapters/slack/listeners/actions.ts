/**
 * Buttons on the status message. Ack at once; the value (`sessionId:version`) is parsed with zod;
 * the switch buttons open the typed-name modal, the others call the session actions. Errors and
 * refusals are ephemeral to the person who clicked.
 */
import type { BlockAction, ButtonAction as SlackButtonAction } from '@slack/bolt';
import { CodedError, ErrorCode } from '../../../errors.js';
import { ACTION_PREFIX, buttonValueSchema, MODAL_ACTIONS, parseActionId, switchModal } from '../blocks.js';
import type { BoltApp } from '../bolt-app.js';
import type { SlackSurface } from '../surface.js';
import { errorReply } from '../texts.js';

export function registerActions(app: BoltApp, surface: SlackSurface): void {
  const pattern = new RegExp(`^${ACTION_PREFIX.replace('.', '\\.')}`);
  app.action<BlockAction<SlackButtonAction>>({ type: 'block_actions', action_id: pattern }, async ({ ack, body, action, client, context }) => {
    await ack();
    const userId = body.user.id;
    const channelId = body.channel?.id ?? body.container?.channel_id;
    const log = surface.log.child({ name: 'slack', channel: channelId });
    let sessionId: string | undefined;
    try {
      const kind = parseActionId(action.action_id);
      const value = buttonValueSchema.safeParse(action.value);
      if (!kind || !value.success) {
        throw new CodedError(ErrorCode.CommandInvalid, 'That button is not one this bot understands any more; use the current status message.');
      }
      const ref = { sessionId: value.data.sessionId, version: value.data.version };
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
