/**
 * Buttons on the status message. Ack at once; the value (`sessionId:version`) is parsed with zod;
 * the switch buttons open the typed-name modal, the others act through SessionActions. Errors and
 * refusals are ephemeral to the person who clicked.
 */
import type { BlockAction, ButtonAction as SlackButtonAction } from '@slack/bolt';
import { buttonValueSchema, MODAL_ACTIONS, parseActionId, switchModal, ACTION_PREFIX } from '../blocks.js';
import { errorReply } from '../error-replies.js';
import type { SessionActions, SurfaceDeps } from '../../../app/session-actions.js';
import type { BoltApp } from '../bolt-app.js';
import { CodedError, ErrorCode } from '../../../errors.js';

export function registerActions(app: BoltApp, deps: SurfaceDeps, actions: SessionActions): void {
  const pattern = new RegExp(`^${ACTION_PREFIX.replace('.', '\\.')}`);
  app.action<BlockAction<SlackButtonAction>>({ type: 'block_actions', action_id: pattern }, async ({ ack, body, action, client, context }) => {
    await ack();
    const userId = body.user.id;
    const channelId = body.channel?.id ?? body.container?.channel_id;
    const log = deps.log.child({ name: 'slack', channel: channelId });
    try {
      const kind = parseActionId(action.action_id);
      const value = buttonValueSchema.safeParse(action.value);
      if (!kind || !value.success) {
        throw new CodedError(ErrorCode.CommandInvalid, 'That button is not one this bot understands any more; use the current status message.');
      }
      const ref = { sessionId: value.data.sessionId, version: value.data.version };
      const log2 = log.child({ session: ref.sessionId });
      log2.info({ action: kind, version: ref.version }, 'button clicked');
      if (MODAL_ACTIONS.includes(kind)) {
        const loaded = await actions.check(kind, ref, userId);
        await client.views.open({
          trigger_id: body.trigger_id,
          view: switchModal({
            metadata: { sessionId: ref.sessionId, version: ref.version, action: kind as 'switch_approve' | 'switch_now' | 'switch_run', channelId: loaded.session.channelId },
            profile: loaded.profile,
            session: loaded.session,
            request: loaded.requests.switch,
          }) as never,
        });
        return;
      }
      await actions.perform(kind, ref, userId, { retry: (context.retryNum ?? 0) > 0 });
    } catch (error) {
      const text = errorReply(error, log, { action: action.action_id }).text;
      if (!channelId) return;
      await client.chat.postEphemeral({ channel: channelId, user: userId, text }).catch((e: unknown) =>
        log.warn({ error: e instanceof Error ? e.message : String(e) }, 'ephemeral reply failed'),
      );
    }
  });
}
