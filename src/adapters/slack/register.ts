/**
 * Registers every Slack listener of pgcutover on a Bolt app: the /migrate command, the status
 * message buttons and the switch confirmation modal. Listeners parse, call one use case, and render
 * its result or error (src/adapters/slack/texts.ts).
 */
import type { FactRecorder } from '../../app/facts.js';
import type { People } from '../../app/people.js';
import type { SessionActions } from '../../app/session-actions.js';
import type { SessionOperations } from '../../app/session-operations.js';
import type { StartSession } from '../../app/start-session.js';
import type { LoadedConfig } from '../../config/profiles.js';
import type { AuditLog, IdempotencyKeys, SessionRepository } from '../../domain/ports/stores.js';
import type { Logger } from '../../log.js';
import type { BoltApp } from './bolt-app.js';
import { registerActions } from './listeners/actions.js';
import { registerCommands } from './listeners/commands.js';
import { registerViews } from './listeners/views.js';
import type { StatusMessages } from './status-message.js';
import type { ThreadPublisher } from './thread-publisher.js';

/** What the listeners call: the use cases, and the few reads the answers need. */
export interface SlackSurface {
  start: StartSession;
  actions: SessionActions;
  people: People;
  facts: FactRecorder;
  operations: Pick<SessionOperations, 'lag' | 'preflight'>;
  sessions: Pick<SessionRepository, 'activeInChannel' | 'listForChannel'>;
  audit: Pick<AuditLog, 'forChannel'>;
  idempotency: IdempotencyKeys;
  status: StatusMessages;
  publisher: ThreadPublisher;
  config: LoadedConfig;
  log: Logger;
  now: () => Date;
}

export function registerListeners(app: BoltApp, surface: SlackSurface): void {
  registerCommands(app, surface);
  registerActions(app, surface);
  registerViews(app, surface);
  app.error(async (error) => {
    surface.log.child({ name: 'slack' }).error({ err: error }, 'unhandled error in a Slack listener');
  });
}
