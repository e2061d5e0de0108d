import type { BoltApp } from './bolt-app.js';

/** The Web API client Bolt gives listeners (`app.client`), without depending on @slack/web-api directly. */
export type SlackClient = BoltApp['client'];
