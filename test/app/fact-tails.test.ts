/**
 * Per-session tails of the fact recorder and the thread publisher: a failure in one fact's listener
 * or status redraw neither stops the session's later facts nor leaves a tail behind.
 */
import { describe, expect, it } from 'vitest';
import { FactRecorder, type Fact } from '../../src/app/facts.js';
import { ThreadPublisher } from '../../src/adapters/slack/thread-publisher.js';
import type { AuditEntry } from '../../src/domain/ports/stores.js';
import type { Session } from '../../src/domain/session.js';
import { createLogger } from '../../src/log.js';

const log = createLogger('silent');
const session: Session = {
  id: '0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f',
  channelId: 'C0TAILS',
  profile: 'orders',
  strategy: 'proxy',
  state: 'syncing',
  version: 3,
  doMigrationId: null,
  startedBy: 'U0ALICE',
  statusMessageTs: '1700000000.000100',
  createdAt: new Date(),
  updatedAt: new Date(),
};
const started: Fact = { type: 'session_started', actor: 'U0ALICE', profile: 'orders' };
const aborted: Fact = { type: 'aborted', actor: 'U0ALICE' };

describe('fact tails', () => {
  it('records and publishes the next fact of a session after its listener threw', async () => {
    const audit: AuditEntry[] = [];
    const published: string[] = [];
    let calls = 0;
    const facts = new FactRecorder(
      { append: async (entry) => (audit.push(entry), { ...entry, id: audit.length, at: new Date() }) as never },
      {
        published: ({ fact }) => {
          if (++calls === 1) throw new Error('listener broke');
          published.push(fact.type);
        },
      },
      log,
    );
    await expect(facts.record(session, started)).resolves.toBeUndefined();
    await facts.record(session, aborted);
    expect(audit.map((e) => e.action)).toEqual(['start', 'abort']);
    expect(published).toEqual(['aborted']);
  });

  it('posts the next thread line of a session after a status redraw failed, and settles', async () => {
    const lines: string[] = [];
    let redraws = 0;
    const publisher = new ThreadPublisher({
      client: { chat: { postMessage: async (args: { text: string }) => (lines.push(args.text), { ok: true }) } } as never,
      refreshStatus: async () => {
        if (++redraws === 1) throw new Error('redraw broke');
      },
      log,
    });
    publisher.published({ session, fact: started });
    await publisher.settled(session.id);
    publisher.published({ session, fact: aborted });
    await publisher.settled(session.id);
    expect(lines).toHaveLength(2);
    expect(redraws).toBe(2);
  });
});
