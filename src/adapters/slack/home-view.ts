/**
 * Block Kit for the App Home tab: the active sessions a person can see, each with its state, the lag
 * the reports last sampled and its channel. Pure rendering: the listener publishes it (views.publish).
 */
import { describeState } from '../../domain/session.js';
import type { SessionWithLag } from '../../reports/session-overview.js';
import { describeLag, mrkdwn, plain, slackDate, STATE_EMOJI, type Block } from './blocks.js';

/** Sessions shown; Slack allows 100 blocks in a view and each session takes two. */
export const HOME_MAX_SESSIONS = 40;

function lagLine({ session, lag }: SessionWithLag): string {
  if (session.state === 'switched') return 'writes go to the target';
  if (!lag) return session.state === 'created' ? 'not measured yet' : 'no sample yet';
  return `${describeLag(lag)} (sampled ${slackDate(lag.at, '{time}')})`;
}

function sessionBlock(entry: SessionWithLag): Block {
  const { session } = entry;
  return {
    type: 'section',
    text: mrkdwn(
      [
        `${STATE_EMOJI[session.state]} *${session.profile}* in <#${session.channelId}>: ${describeState(session.state)}`,
        `*Lag* ${lagLine(entry)}`,
        `Started by <@${session.startedBy}> ${slackDate(session.createdAt)} · session \`${session.id.slice(0, 8)}\``,
      ].join('\n'),
    ),
  };
}

/** The home view of a person: `entries` are the sessions they can see, in the order to show them. */
export function renderHome(entries: readonly SessionWithLag[], now: Date): { type: 'home'; blocks: Block[] } {
  const blocks: Block[] = [
    { type: 'header', text: plain('Migration sessions') },
    {
      type: 'context',
      elements: [
        mrkdwn(
          `Active sessions of the profiles where you are an operator or approver (yourself or through a user group); lag as the lag reports last sampled it. Updated ${slackDate(now)}. Open the channel to act on a session.`,
        ),
      ],
    },
  ];
  if (entries.length === 0) {
    blocks.push({
      type: 'section',
      text: mrkdwn('No migration session of a profile you operate or approve is running. Start one in its channel with `/migrate start <profile>`; `/migrate profiles` lists the profiles there.'),
    });
  }
  for (const entry of entries.slice(0, HOME_MAX_SESSIONS)) blocks.push({ type: 'divider' }, sessionBlock(entry));
  if (entries.length > HOME_MAX_SESSIONS) {
    blocks.push({ type: 'context', elements: [mrkdwn(`…and ${entries.length - HOME_MAX_SESSIONS} more; \`/migrate status\` in each channel shows them.`)] });
  }
  return { type: 'home', blocks };
}
