/**
 * What the gates allow, read back from the store after hostile traffic: every session was started by
 * an operator, every gate request was made and approved by someone entitled to it (never the requester
 * under the two-person rule), and every change in the audit log was made by a person the profile names
 * for that action. The role table is written out here, independently of src/domain/gates.ts.
 */
import type { Database } from '../../src/adapters/store/database.js';

export interface PeoplePolicy {
  operators: readonly string[];
  approvers: readonly string[];
  twoPersonRule: boolean;
}

export type Role = 'operator' | 'approver' | 'either';

/** The person an audit action needs; `requester` also lets whoever asked withdraw their own request. */
const NEEDS: Record<string, Role | 'requester'> = {
  start: 'operator',
  dry_run: 'operator',
  freeze_request: 'operator',
  switch_request: 'operator',
  report: 'operator',
  freeze_approve: 'either',
  freeze_now: 'operator',
  freeze: 'either',
  switch_approve: 'approver',
  switch_now: 'approver',
  switch_run: 'either',
  switch: 'either',
  freeze_withdraw: 'requester',
  switch_withdraw: 'requester',
  resume: 'operator',
  abort: 'operator',
  rollback: 'operator',
  finish: 'operator',
};

export function has(policy: PeoplePolicy, role: Role, user: string): boolean {
  const op = policy.operators.includes(user);
  const ap = policy.approvers.includes(user);
  return role === 'operator' ? op : role === 'approver' ? ap : op || ap;
}

interface AuditRow {
  id: string;
  session_id: string | null;
  channel_id: string;
  actor: string;
  action: string;
  outcome: string;
  details: Record<string, unknown>;
  profile: string | null;
}

/** Every violation of the gates found in the store, as one line each (empty when the gates held). */
export async function gateViolations(db: Database, policies: Record<string, PeoplePolicy>): Promise<string[]> {
  const problems: string[] = [];
  const policyOf = (profile: string | null | undefined) => (profile ? policies[profile] : undefined);

  const sessions = await db.query<{ id: string; profile: string; started_by: string }>('SELECT id, profile, started_by FROM sessions');
  for (const s of sessions.rows) {
    const policy = policyOf(s.profile);
    if (!policy || !has(policy, 'operator', s.started_by)) problems.push(`session ${s.id} (${s.profile}) started by ${JSON.stringify(s.started_by)}, not an operator`);
  }

  const gates = await db.query<{ id: string; gate: string; requested_by: string; approved_by: string | null; profile: string }>(
    'SELECT g.id, g.gate, g.requested_by, g.approved_by, s.profile FROM gate_requests g JOIN sessions s ON s.id = g.session_id',
  );
  for (const g of gates.rows) {
    const policy = policyOf(g.profile);
    if (!policy) continue;
    if (!has(policy, 'operator', g.requested_by)) problems.push(`${g.gate} request ${g.id} made by ${JSON.stringify(g.requested_by)}, not an operator`);
    if (g.approved_by === null) continue;
    if (!has(policy, g.gate === 'switch' ? 'approver' : 'either', g.approved_by)) problems.push(`${g.gate} request ${g.id} approved by ${JSON.stringify(g.approved_by)}, who may not`);
    // Without the rule an operator approves their own request at once (freeze_now, switch_now): allowed.
    if (policy.twoPersonRule && g.approved_by === g.requested_by) problems.push(`${g.gate} request ${g.id} approved by its requester ${g.requested_by} under the two-person rule`);
  }

  const audit = await db.query<AuditRow>(
    `SELECT a.id::text AS id, a.session_id, a.channel_id, a.actor, a.action, a.outcome, a.details, s.profile
       FROM audit_log a LEFT JOIN sessions s ON s.id = a.session_id
      WHERE a.outcome IN ('requested', 'approved', 'succeeded') AND a.actor <> 'bot'`,
  );
  for (const row of audit.rows) {
    const profile = row.profile ?? (typeof row.details.profile === 'string' ? row.details.profile : null);
    const policy = policyOf(profile);
    const where = `audit row ${row.id} (${row.action} ${row.outcome} by ${JSON.stringify(row.actor)} in ${row.channel_id})`;
    if (!policy) {
      problems.push(`${where}: no profile`);
      continue;
    }
    const need = NEEDS[row.action];
    const allowed =
      need === undefined
        ? has(policy, 'either', row.actor)
        : need === 'requester'
          ? has(policy, 'operator', row.actor) || row.details.requestedBy === row.actor
          : has(policy, need, row.actor);
    if (!allowed) problems.push(`${where}: needs ${need ?? 'an operator or approver'}`);
    if (row.outcome === 'approved' && policy.twoPersonRule) {
      if (row.details.requestedBy === row.actor) problems.push(`${where}: the requester approved under the two-person rule`);
      if (row.action === 'freeze_now' || row.action === 'switch_now') problems.push(`${where}: approved without a second person under the two-person rule`);
    }
  }
  return problems;
}
