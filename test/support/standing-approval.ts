/**
 * The gates as the engine-level tests and the cutover benchmark need them (the gates themselves are
 * tested through Slack): a switch approved by Bob long before any freeze while `approved()` says so.
 */
import type { GateRequest } from '../../src/domain/gates.js';
import type { ApprovalRepository } from '../../src/domain/ports/stores.js';

export function standingSwitchApproval(approved: () => boolean): ApprovalRepository {
  return {
    open: async () => ({}),
    request: async () => Promise.reject(new Error('not used')),
    approve: async () => Promise.reject(new Error('not used')),
    close: async () => undefined,
    latest: async () => undefined,
    validApproval: async (sessionId, gate): Promise<GateRequest | undefined> =>
      approved() && gate === 'switch'
        ? {
            id: 'standing-switch-approval',
            sessionId,
            gate,
            status: 'approved',
            requestedBy: 'U0ALICE',
            requestedAt: new Date(0),
            requestExpiresAt: new Date(8.64e15),
            approvedBy: 'U0BOB',
            approvedAt: new Date(0),
            approvalExpiresAt: new Date(8.64e15),
            closedAt: null,
          }
        : undefined,
  };
}
