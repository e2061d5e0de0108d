/** A ReportPoster that records what it was asked to post (and can be told to fail), for scheduler tests. */
import type { LagReport } from '../../src/domain/report.js';
import type { Session } from '../../src/domain/session.js';
import type { ChannelAlert, ReportPoster } from '../../src/reports/ports.js';

export type PostedItem =
  | { kind: 'report'; replica: string; sessionId: string; report: LagReport }
  | { kind: 'alert'; replica: string; sessionId: string; alert: ChannelAlert }
  | { kind: 'status'; replica: string; sessionId: string };

export class RecordingPoster implements ReportPoster {
  readonly replica: string;
  readonly log: PostedItem[];
  /** While set, postInThread throws this (a replica dying before it could post). */
  failReports: Error | undefined;

  constructor(replica: string, shared: PostedItem[] = []) {
    this.replica = replica;
    this.log = shared;
  }

  async postInThread(session: Session, report: LagReport): Promise<void> {
    if (this.failReports) throw this.failReports;
    this.log.push({ kind: 'report', replica: this.replica, sessionId: session.id, report });
  }

  async alertChannel(session: Session, alert: ChannelAlert): Promise<void> {
    this.log.push({ kind: 'alert', replica: this.replica, sessionId: session.id, alert });
  }

  async refreshStatus(session: Session): Promise<void> {
    this.log.push({ kind: 'status', replica: this.replica, sessionId: session.id });
  }
}
