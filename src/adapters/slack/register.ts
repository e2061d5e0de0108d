/**
 * Registers every Slack listener of pgcutover on a Bolt app: the /migrate command, the status
 * message buttons, the switch confirmation modal, the App Home, and clicks or dialogs it never drew. Listeners
 * parse, call one use case, and render its result or error (src/adapters/slack/texts.ts).
 */
import type { BoltApp } from './bolt-app.js';
import { registerActions } from './listeners/actions.js';
import { registerCommands } from './listeners/commands.js';
import { registerHome } from './listeners/home.js';
import { registerUnknown } from './listeners/unknown.js';
import { registerViews } from './listeners/views.js';
import type { SlackSurface } from './surface.js';

export function registerListeners(app: BoltApp, surface: SlackSurface): void {
  registerCommands(app, surface);
  registerActions(app, surface);
  registerViews(app, surface);
  registerHome(app, surface);
  registerUnknown(app, surface);
  app.error(async (error) => {
    surface.log.child({ name: 'slack' }).error({ err: error }, 'unhandled error in a Slack listener');
  });
}
