/**
 * Signed Events API deliveries as Slack sends them: a JSON `event_callback` envelope around the event,
 * signed like every request (`v0:<ts>:<body>`).
 */
import { sign, type SlackResponse } from './slack-requests.js';

export function eventCallback(event: Record<string, unknown>): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    token: 'verification-token-unused',
    team_id: 'T_TEST',
    api_app_id: 'A_TEST',
    event: { event_ts: `${now}.000100`, ...event },
    type: 'event_callback',
    event_id: `Ev${Math.random().toString(36).slice(2, 12).toUpperCase()}`,
    event_time: now,
    authorizations: [{ enterprise_id: null, team_id: 'T_TEST', user_id: 'U_BOT', is_bot: true, is_enterprise_install: false }],
    is_ext_shared_channel: false,
  };
}

/** `app_home_opened` for `userId` on `tab` (Slack sends one for the Messages tab too). */
export const appHomeOpened = (userId: string, tab: 'home' | 'messages' = 'home') =>
  eventCallback({ type: 'app_home_opened', user: userId, channel: 'D0HOME001', tab });

export async function postSignedEvent(url: string, envelope: Record<string, unknown>, secret: string): Promise<SlackResponse> {
  const body = JSON.stringify(envelope);
  const timestamp = Math.floor(Date.now() / 1000);
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-slack-request-timestamp': String(timestamp), 'x-slack-signature': sign(secret, timestamp, body) },
    body,
  });
  const text = await response.text();
  return { status: response.status, text, json: () => JSON.parse(text) as unknown };
}
