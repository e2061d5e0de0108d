/**
 * The plan a session's machines would run, its fingerprint, and what an approval given now is bound
 * to (the fingerprint, the lag, the source's WAL position and the predicted freeze).
 */
import { createHash } from 'node:crypto';
import { planSteps, type PlannedStep } from '../../domain/cutover-plan.js';
import { predictFreeze, type ApprovalBinding } from '../../domain/freeze-prediction.js';
import type { SessionMachines } from '../../domain/ports/machines.js';
import type { Strategy } from '../../domain/session.js';

export function planOf(m: SessionMachines): PlannedStep[] {
  return planSteps({ ...m.settings, ...(m.routerLabel ? { proxyLabel: m.routerLabel } : {}) });
}

/** Changes whenever a step or one of the profile's numbers in it changes. */
export function planFingerprint(m: SessionMachines): string {
  return createHash('sha256').update(JSON.stringify(planOf(m))).digest('hex').slice(0, 16);
}

export async function bindingOf(m: SessionMachines, strategy: Strategy): Promise<ApprovalBinding> {
  const planHash = planFingerprint(m);
  const [inputs, lag, reverse] = await Promise.all([m.freezeInputs?.(), m.lag.measure(), m.reverse?.capability().catch(() => undefined)]);
  return {
    planHash,
    lagBytes: lag.known ? lag.bytes : null,
    sourceLsn: inputs?.sourceLsn ?? null,
    predictedFreezeMs: inputs ? predictFreeze(inputs, strategy).ms : null,
    ...(reverse ? { replicatesBack: reverse.ok } : {}),
    ...(inputs ? {} : { unknown: 'the predicted freeze cannot be measured on these machines' }),
  };
}
