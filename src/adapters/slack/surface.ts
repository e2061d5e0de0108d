/** What the Slack listeners call: the use cases, and the few reads their answers need. */
import type { ClusterSetup } from '../../app/cluster-setup.js';
import type { FactRecorder } from '../../app/facts.js';
import type { People } from '../../app/people.js';
import type { SessionActions } from '../../app/session-actions.js';
import type { SessionOperations } from '../../app/session-operations.js';
import type { StartSession } from '../../app/start-session.js';
import type { LoadedConfig } from '../../config/profiles.js';
import type { AuditLog, IdempotencyKeys, SessionRepository } from '../../domain/ports/stores.js';
import type { Logger } from '../../log.js';
import type { SessionOverview } from '../../reports/session-overview.js';
import type { StatusMessages } from './status-message.js';
import type { ThreadPublisher } from './thread-publisher.js';

export interface SlackSurface {
  start: StartSession;
  /** `/migrate setup` (the dry run shows the same set-up through the preflight's fixes). */
  setup: Pick<ClusterSetup, 'show' | 'run'>;
  actions: SessionActions;
  people: People;
  facts: FactRecorder;
  operations: Pick<SessionOperations, 'lag' | 'preflight'>;
  sessions: Pick<SessionRepository, 'activeInChannel' | 'listForChannel' | 'get'>;
  audit: Pick<AuditLog, 'forChannel'>;
  idempotency: IdempotencyKeys;
  status: StatusMessages;
  publisher: ThreadPublisher;
  /** The active sessions with their last sampled lag (the App Home). */
  overview: Pick<SessionOverview, 'active'>;
  config: LoadedConfig;
  log: Logger;
  now: () => Date;
}

