/**
 * Clicks and dialogs this bot never drew (forged, or left from another version of the app): answered
 * at once with a clear line, instead of Bolt's unhandled-request timeout (3 s, then a 404 to Slack).
 */
import type { BlockAction } from '@slack/bolt';
import { CodedError, ErrorCode } from '../../../errors.js';
import { ACTION_PREFIX, SWITCH_MODAL_CALLBACK } from '../blocks.js';
import type { BoltApp } from '../bolt-app.js';
import type { SlackSurface } from '../surface.js';
import { errorReply } from '../texts.js';

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function registerUnknown(app: BoltApp, surface: SlackSurface): void {
  const log = surface.log.child({ name: 'slack' });
  // Negative lookaheads: the bot's own ids stay with their one listener (two would ack twice).
  app.action<BlockAction>({ type: 'block_actions', action_id: new RegExp(`^(?!${literal(ACTION_PREFIX)})`) }, async ({ ack, body, client }) => {
    await ack();
    const user = body.user?.id;
    const channel = body.channel?.id ?? (body.container as { channel_id?: unknown } | undefined)?.channel_id;
    if (typeof user !== 'string' || typeof channel !== 'string') return;
    const { text } = errorReply(new CodedError(ErrorCode.CommandInvalid, 'That control is not one this bot drew; nothing was done. Use the status message in the channel.'), log);
    await client.chat.postEphemeral({ channel, user, text }).catch((err: unknown) => log.warn({ err }, 'ephemeral reply failed'));
  });
  app.view({ type: 'view_submission', callback_id: new RegExp(`^(?!${literal(SWITCH_MODAL_CALLBACK)}$)`) }, async ({ ack }) => {
    const { text } = errorReply(new CodedError(ErrorCode.CommandInvalid, 'This dialog is not one this bot opened; nothing was done. Close it and use the status message in the channel.'), log);
    await ack({
      response_action: 'update',
      view: { type: 'modal', title: { type: 'plain_text', text: 'pgcutover' }, close: { type: 'plain_text', text: 'Close' }, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] },
    });
  });
}
