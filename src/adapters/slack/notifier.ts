/**
 * How the engine reaches the channel outside a click (budget expiry, a failed step put back,
 * recovery): refresh the status message, add a thread line (warnings and errors also broadcast to
 * the channel), and record it in the audit log.
 */
import type { SessionNotifier } from '../../app/session-operations.js';
import type { Session } from '../../domain/session.js';
import type { Logger } from '../../log.js';
import type { AuditLog } from '../store/audit-log.js';
import type { StatusMessages } from './status-message.js';

const ICON = { info: ':information_source:', warning: ':warning:', error: ':rotating_light:' } as const;

export class SlackNotifier implements SessionNotifier {
  private readonly status: StatusMessages;
  private readonly audit: AuditLog;
  private readonly log: Logger;

  constructor(status: StatusMessages, audit: AuditLog, log: Logger) {
    this.status = status;
    this.audit = audit;
    this.log = log;
  }

  async notify(session: Session, note: { level: 'info' | 'warning' | 'error'; text: string }): Promise<void> {
    await Promise.all([
      this.status.thread(session, `${ICON[note.level]} ${note.text}`, { broadcast: note.level !== 'info' }),
      this.status.refresh(session.id),
      this.audit
        .append({
          sessionId: session.id,
          channelId: session.channelId,
          actor: 'bot',
          action: 'notice',
          outcome: note.level === 'error' ? 'failed' : 'info',
          details: { level: note.level, text: note.text, state: session.state, version: session.version },
        })
        .catch((error: unknown) =>
          this.log.warn({ session: session.id, error: error instanceof Error ? error.message : String(error) }, 'audit of a notice failed'),
        ),
    ]);
  }
}
