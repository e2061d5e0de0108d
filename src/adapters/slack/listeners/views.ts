/**
 * The typed-confirmation modal of the switch. Validation answers in the ack (`response_action:
 * errors` keeps the modal open with the message under the input); the checks run again here, at
 * submission time, so an approval that expired or a session that moved while the modal was open is
 * refused. On success the modal closes and the switch proceeds.
 */
import { z } from 'zod';
import { CodedError, ErrorCode } from '../../../errors.js';
import { modalMetadataSchema, SWITCH_MODAL_BLOCK, SWITCH_MODAL_CALLBACK, SWITCH_MODAL_INPUT } from '../blocks.js';
import { errorReply } from '../texts.js';
import type { BoltApp, RequestContext } from '../bolt-app.js';
import { teamIdSchema, userIdSchema } from '../slack-ids.js';
import type { SlackSurface } from '../surface.js';
import { firstDelivery } from './request-guards.js';

const stateSchema = z.object({
  values: z.object({
    [SWITCH_MODAL_BLOCK]: z.object({ [SWITCH_MODAL_INPUT]: z.object({ value: z.string().nullish() }) }),
  }),
});

export function registerViews(app: BoltApp, deps: SlackSurface): void {
  app.view({ callback_id: SWITCH_MODAL_CALLBACK, type: 'view_submission' }, async ({ ack, body, view, client, context }) => {
    const log = deps.log.child({ name: 'slack' });
    const fieldError = (text: string) => ack({ response_action: 'errors', errors: { [SWITCH_MODAL_BLOCK]: text } });
    const user = userIdSchema.safeParse(body.user?.id);
    if (!user.success || !teamIdSchema.optional().safeParse(body.team?.id ?? undefined).success) {
      await fieldError(`This submission is not one Slack would send (the ${user.success ? 'team' : 'user'} id is malformed). Nothing was done.`);
      return;
    }
    const userId = user.data;
    let metadata: z.infer<typeof modalMetadataSchema>;
    try {
      metadata = modalMetadataSchema.parse(JSON.parse(view.private_metadata));
    } catch {
      await fieldError('This dialog is out of date: close it and use the current status message.');
      return;
    }
    const state = stateSchema.safeParse(view.state);
    const typed = state.success ? (state.data.values[SWITCH_MODAL_BLOCK]?.[SWITCH_MODAL_INPUT]?.value ?? '').trim() : '';
    const ref = { sessionId: metadata.sessionId, version: metadata.version };
    if (!(await firstDelivery(deps.idempotency, context as RequestContext, deps.now()))) {
      await fieldError('This submission was already received; it is not done twice.');
      return;
    }
    let loaded;
    try {
      loaded = await deps.people.check(metadata.action, ref, userId);
      if (loaded.session.channelId !== metadata.channelId) {
        throw new CodedError(ErrorCode.GateRefused, 'This dialog belongs to a migration session of another channel; use the status message there.');
      }
    } catch (error) {
      await fieldError(errorReply(error, log.child({ session: ref.sessionId })).text);
      return;
    }
    const expected = loaded.profile.digitalocean.database;
    if (typed !== expected) {
      await deps.facts.record(loaded.session, { type: 'refused', actor: userId, action: metadata.action, reason: 'typed database name did not match', quiet: true });
      await fieldError(`That is not the target database name. Type ${expected} exactly to confirm.`);
      return;
    }
    await ack();
    try {
      await deps.actions.perform(metadata.action, ref, userId, { retry: (context.retryNum ?? 0) > 0 });
    } catch (error) {
      const text = errorReply(error, log.child({ session: ref.sessionId })).text;
      await client.chat.postEphemeral({ channel: metadata.channelId, user: userId, text }).catch((err: unknown) => log.warn({ err }, 'ephemeral reply failed'));
    } finally {
      await deps.publisher.settled(ref.sessionId);
    }
  });
}
