/** What the Slack listeners call: the use cases, and the few reads their answers need. */
import type { FactRecorder } from '../../app/facts.js';
import type { People } from '../../app/people.js';
import type { SessionActions } from '../../app/session-actions.js';
import type { SessionOperations } from '../../app/session-operations.js';
import type { StartSession } from '../../app/start-session.js';
import type { LoadedConfig } from '../../config/profiles.js';
import type { AuditLog, IdempotencyKeys, SessionRepository } from '../../domain/ports/stores.js';
import type { Logger } from '../../log.js';
import type { StatusMessages } from './status-message.js';
import type { ThreadPublisher } from './thread-publisher.js';

export interface SlackSurface {
  start: StartSession;
  actions: SessionActions;
  people: People;
  facts: FactRecorder;
  operations: Pick<SessionOperations, 'lag' | 'preflight'>;
  sessions: Pick<SessionRepository, 'activeInChannel' | 'listForChannel' | 'get'>;
  audit: Pick<AuditLog, 'forChannel'>;
  idempotency: IdempotencyKeys;
  status: StatusMessages;
  publisher: ThreadPublisher;
  config: LoadedConfig;
  log: Logger;
  now: () => Date;
}

