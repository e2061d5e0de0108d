/**
 * Signed Slack requests with real payload shapes: slash commands (flat form), block_actions and
 * view_submission (`payload=<json>`), HMAC-SHA256 `v0:<ts>:<body>` as Slack signs them.
 */
import { createHmac } from 'node:crypto';

export function sign(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export interface SendOptions {
  secret: string;
  /** Unix seconds; default now. */
  timestamp?: number;
  /** Overrides the computed signature (forgery tests). */
  signature?: string;
  retryNum?: number;
}

export interface SlackResponse {
  status: number;
  text: string;
  json(): unknown;
}

export async function postSigned(url: string, body: string, options: SendOptions): Promise<SlackResponse> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    'x-slack-request-timestamp': String(timestamp),
    'x-slack-signature': options.signature ?? sign(options.secret, timestamp, body),
  };
  if (options.retryNum !== undefined) {
    headers['x-slack-retry-num'] = String(options.retryNum);
    headers['x-slack-retry-reason'] = 'http_timeout';
  }
  const response = await fetch(url, { method: 'POST', headers, body });
  const text = await response.text();
  return { status: response.status, text, json: () => JSON.parse(text) as unknown };
}

export interface CommandInput {
  text: string;
  userId: string;
  channelId: string;
  responseUrl: string;
  teamId?: string;
}

export function slashCommandBody(input: CommandInput): string {
  return new URLSearchParams({
    token: 'verification-token-unused',
    team_id: input.teamId ?? 'T_TEST',
    team_domain: 'pgcutover-test',
    channel_id: input.channelId,
    channel_name: 'db-migrations',
    user_id: input.userId,
    user_name: input.userId.toLowerCase(),
    command: '/migrate',
    text: input.text,
    api_app_id: 'A_TEST',
    is_enterprise_install: 'false',
    response_url: input.responseUrl,
    trigger_id: `${Date.now()}.1234.${Math.random().toString(16).slice(2)}`,
  }).toString();
}

export interface ButtonClickInput {
  userId: string;
  channelId: string;
  messageTs: string;
  /** The button element as the bot rendered it (action_id, value, text…). */
  button: Record<string, unknown>;
  blockId?: string;
  responseUrl: string;
  messageBlocks?: unknown[];
}

export function blockActionsPayload(input: ButtonClickInput): Record<string, unknown> {
  return {
    type: 'block_actions',
    user: { id: input.userId, username: input.userId.toLowerCase(), name: input.userId.toLowerCase(), team_id: 'T_TEST' },
    api_app_id: 'A_TEST',
    token: 'verification-token-unused',
    container: { type: 'message', message_ts: input.messageTs, channel_id: input.channelId, is_ephemeral: false },
    trigger_id: `${Date.now()}.1234.${Math.random().toString(16).slice(2)}`,
    team: { id: 'T_TEST', domain: 'pgcutover-test' },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: input.channelId, name: 'db-migrations' },
    message: { type: 'message', ts: input.messageTs, bot_id: 'B_BOT', user: 'U_BOT', text: 'status', blocks: input.messageBlocks ?? [] },
    state: { values: {} },
    response_url: input.responseUrl,
    actions: [
      {
        type: 'button',
        action_id: input.button.action_id,
        block_id: input.blockId ?? 'pgc_actions',
        text: input.button.text,
        value: input.button.value,
        ...(input.button.style ? { style: input.button.style } : {}),
        action_ts: (Date.now() / 1000).toFixed(6),
      },
    ],
  };
}

export interface ViewSubmissionInput {
  userId: string;
  /** The view the bot opened (views.open `view` argument). */
  view: Record<string, unknown>;
  values: Record<string, Record<string, { type: string; value: string | null }>>;
}

export function viewSubmissionPayload(input: ViewSubmissionInput): Record<string, unknown> {
  return {
    type: 'view_submission',
    team: { id: 'T_TEST', domain: 'pgcutover-test' },
    user: { id: input.userId, username: input.userId.toLowerCase(), name: input.userId.toLowerCase(), team_id: 'T_TEST' },
    api_app_id: 'A_TEST',
    token: 'verification-token-unused',
    trigger_id: `${Date.now()}.1234.${Math.random().toString(16).slice(2)}`,
    view: {
      id: 'V_TEST',
      team_id: 'T_TEST',
      type: 'modal',
      blocks: input.view.blocks,
      private_metadata: input.view.private_metadata,
      callback_id: input.view.callback_id,
      state: { values: input.values },
      hash: '1700000000.abcdef',
      title: input.view.title,
      clear_on_close: false,
      notify_on_close: false,
      close: input.view.close,
      submit: input.view.submit,
      previous_view_id: null,
      root_view_id: 'V_TEST',
      app_id: 'A_TEST',
      external_id: '',
      app_installed_team_id: 'T_TEST',
      bot_id: 'B_BOT',
    },
    response_urls: [],
    is_enterprise_install: false,
    enterprise: null,
  };
}

export const interactionBody = (payload: Record<string, unknown>) => new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
