/**
 * Registers every Slack listener of pgcutover on a Bolt app: the /migrate command, the status
 * message buttons and the switch confirmation modal. The engine arrives through `deps.operations`.
 */
import type { BoltApp } from './bolt-app.js';
import { registerActions } from './listeners/actions.js';
import { registerCommands } from './listeners/commands.js';
import { registerViews } from './listeners/views.js';
import { SessionActions, type SurfaceDeps } from '../../app/session-actions.js';

export type { SurfaceDeps as SlackDeps } from '../../app/session-actions.js';

export function registerListeners(app: BoltApp, deps: SurfaceDeps): { actions: SessionActions } {
  const actions = new SessionActions(deps);
  registerCommands(app, deps, actions);
  registerActions(app, deps, actions);
  registerViews(app, deps, actions);
  app.error(async (error) => {
    deps.log.child({ name: 'slack' }).error({ err: error }, 'unhandled error in a Slack listener');
  });
  return { actions };
}
