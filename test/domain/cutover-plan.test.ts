import { describe, expect, it } from 'vitest';
import {
  attemptSteps,
  hasSwitched,
  planSteps,
  recoveryDecision,
  stepStatuses,
  type AttemptKind,
  type CutoverStep,
  type JournalEntry,
  type JournalEvent,
  type PlanSettings,
} from '../../src/domain/cutover-plan.js';

const settings: PlanSettings = {
  strategy: 'proxy',
  freezeMethod: 'proxy-pause',
  freezeBudgetSeconds: 30,
  maxLagBytesToFreeze: 16 * 1024 * 1024,
  fenceTimeoutSeconds: 15,
  sequenceMargin: 1000,
  proxyLabel: 'pgbouncer database orders',
};

let clock = 0;
const entry = (attempt: number, kind: AttemptKind, step: CutoverStep, event: JournalEvent): JournalEntry => ({
  attempt,
  kind,
  step,
  event,
  at: new Date(++clock),
});

/** The journal of a run that completes every step of the attempt. */
function completeRun(attempt: number, kind: AttemptKind, steps: readonly CutoverStep[]): JournalEntry[] {
  return steps.flatMap((step) => [entry(attempt, kind, step, 'started'), entry(attempt, kind, step, 'done')]);
}

/** Every prefix of a journal: the crash points. */
const prefixes = (journal: JournalEntry[]) => journal.map((_, i) => journal.slice(0, i + 1));

describe('the plan', () => {
  it('lists the proxy strategy in order, with gates and the profile numbers', () => {
    const plan = planSteps(settings);
    expect(plan.map((s) => s.step)).toEqual([
      'preconditions',
      'freeze',
      'fence',
      'sequences',
      'repoint',
      'resume_target',
      'replicate_back',
      'stop_migration',
    ]);
    expect(plan.map((s) => s.gate)).toEqual(['freeze', 'freeze', 'freeze', 'freeze', 'switch', 'switch', 'switch', 'finish']);
    expect(plan[0]?.description).toContain('16 MiB');
    expect(plan[0]?.description).toContain('pgbouncer database orders');
    expect(plan[1]?.description).toContain('30 s');
    expect(plan[3]?.description).toContain('1000');
  });

  it('lists the connection-parameters strategy: freeze in the database, stop, hand out', () => {
    const plan = planSteps({ ...settings, strategy: 'connection-parameters', freezeMethod: 'read-only-roles' });
    expect(plan.map((s) => s.step)).toEqual([
      'preconditions',
      'freeze',
      'fence',
      'sequences',
      'stop_migration',
      'publish_parameters',
    ]);
    expect(plan[1]?.description).toContain('read-only');
    expect(plan[0]?.description).not.toContain('proxy');
  });

  it('runs the switch only after the fence and the sequences in every cutover plan', () => {
    for (const strategy of ['proxy', 'connection-parameters'] as const) {
      const steps = attemptSteps('cutover', strategy);
      const fence = steps.indexOf('fence');
      expect(fence).toBeGreaterThan(steps.indexOf('freeze'));
      expect(steps.indexOf('sequences')).toBeGreaterThan(fence);
      const switchStep = strategy === 'proxy' ? 'repoint' : 'stop_migration';
      expect(steps.indexOf(switchStep)).toBeGreaterThan(steps.indexOf('sequences'));
    }
  });
});

describe('step statuses', () => {
  it('is pending without events and follows the last event of the attempt only', () => {
    const journal = [
      entry(1, 'cutover', 'freeze', 'started'),
      entry(1, 'cutover', 'freeze', 'done'),
      entry(1, 'cutover', 'fence', 'started'),
      entry(1, 'cutover', 'fence', 'failed'),
      entry(1, 'cutover', 'freeze', 'undone'),
      entry(2, 'cutover', 'freeze', 'started'),
    ];
    const first = stepStatuses(journal, 1);
    expect(first.get('freeze')).toBe('undone');
    expect(first.get('fence')).toBe('failed');
    expect(first.get('sequences')).toBe('pending');
    expect(stepStatuses(journal, 2).get('freeze')).toBe('started');
  });
});

describe('recoveryDecision', () => {
  it('does nothing without a journal', () => {
    expect(recoveryDecision([])).toMatchObject({ action: 'none', settle: 'unchanged' });
  });

  describe('at every crash point of a proxy cutover', () => {
    const run = completeRun(1, 'cutover', attemptSteps('cutover', 'proxy'));
    const decisions = prefixes(run).map((journal) => ({ last: journal.at(-1), decision: recoveryDecision(journal) }));

    it('does nothing before the freeze was started', () => {
      const before = decisions.filter((d) => d.last?.step === 'preconditions');
      expect(before).toHaveLength(2);
      for (const d of before) expect(d.decision.action).toBe('none');
    });

    it('undoes the freeze from "freeze started" until the repoint is done, repointing to the source once a repoint started', () => {
      const undo = decisions.filter((d) => d.decision.action === 'undo-freeze');
      expect(undo.map((d) => `${d.last?.step}:${d.last?.event}`)).toEqual([
        'freeze:started',
        'freeze:done',
        'fence:started',
        'fence:done',
        'sequences:started',
        'sequences:done',
        'repoint:started',
      ]);
      for (const d of undo) {
        expect(d.decision).toMatchObject({ settle: 'syncing', repointToSource: d.last?.step === 'repoint' });
      }
    });

    it('completes the switch (resume on the target, then replicating back) once the repoint is done, and settles after replicating back', () => {
      const afterRepoint = decisions.slice(run.findIndex((e) => e.step === 'repoint' && e.event === 'done'));
      expect(afterRepoint.map((d) => d.decision.action)).toEqual(['complete-switch', 'complete-switch', 'complete-switch', 'complete-switch', 'none']);
      expect(afterRepoint.at(-1)?.decision.settle).toBe('switched');
    });

    it('never decides to switch unless the journal proves the repoint completed', () => {
      for (const journal of prefixes(run)) {
        const decision = recoveryDecision(journal);
        if (decision.action === 'complete-switch') expect(hasSwitched(journal)).toBe(true);
        else if (decision.action !== 'none') expect(hasSwitched(journal)).toBe(false);
      }
    });
  });

  describe('at every crash point of a connection-parameters cutover', () => {
    const run = completeRun(1, 'cutover', attemptSteps('cutover', 'connection-parameters'));

    it('undoes the freeze until the migration stop starts, then completes the hand-out', () => {
      const byPoint = prefixes(run).map((journal) => {
        const last = journal.at(-1);
        return [`${last?.step}:${last?.event}`, recoveryDecision(journal).action];
      });
      expect(byPoint).toEqual([
        ['preconditions:started', 'none'],
        ['preconditions:done', 'none'],
        ['freeze:started', 'undo-freeze'],
        ['freeze:done', 'undo-freeze'],
        ['fence:started', 'undo-freeze'],
        ['fence:done', 'undo-freeze'],
        ['sequences:started', 'undo-freeze'],
        ['sequences:done', 'undo-freeze'],
        ['stop_migration:started', 'complete-switch'],
        ['stop_migration:done', 'complete-switch'],
        ['publish_parameters:started', 'complete-switch'],
        ['publish_parameters:done', 'none'],
      ]);
    });
  });

  describe('after a failed step and during its undo', () => {
    const failedAt = (step: CutoverStep) => {
      const steps = attemptSteps('cutover', 'proxy');
      const before = steps.slice(0, steps.indexOf(step));
      return [...completeRun(1, 'cutover', before), entry(1, 'cutover', step, 'started'), entry(1, 'cutover', step, 'failed')];
    };

    it.each(['fence', 'sequences', 'repoint', 'resume_target'] as const)(
      'a failed %s leaves writes to put back on the source, and a completed undo settles',
      (step) => {
        const journal = failedAt(step);
        const decision = recoveryDecision(journal);
        if (step === 'resume_target') {
          // The repoint completed: the switch happened; the resume is retried (idempotent), never a second repoint.
          expect(decision.action).toBe('complete-switch');
        } else {
          expect(decision).toMatchObject({ action: 'undo-freeze', repointToSource: step === 'repoint' });
        }
        const undoing = [...journal, entry(1, 'cutover', 'unfreeze_source', 'started')];
        expect(recoveryDecision(undoing)).toMatchObject({
          action: 'undo-freeze',
          repointToSource: step === 'repoint' || step === 'resume_target',
        });
        const undone = [...undoing, entry(1, 'cutover', 'unfreeze_source', 'done')];
        expect(recoveryDecision(undone)).toMatchObject({ action: 'none', settle: 'syncing' });
      },
    );

    it('a budget expiry after the repoint (switch not completed) undoes with a repoint to the source', () => {
      const journal = [
        ...completeRun(1, 'cutover', ['preconditions', 'freeze', 'fence', 'sequences', 'repoint']),
        entry(1, 'cutover', 'unfreeze_source', 'started'),
      ];
      expect(recoveryDecision(journal)).toMatchObject({ action: 'undo-freeze', repointToSource: true });
    });
  });

  describe('a run that died between its freeze and its resume (nothing journaled after the freeze started)', () => {
    const died = [...completeRun(1, 'cutover', ['preconditions']), entry(1, 'cutover', 'freeze', 'started')];

    it('the proxy at the target means the run reached its repoint (after the fence): complete the switch, without a second repoint', () => {
      expect(recoveryDecision(died, { pointsTo: 'target' })).toMatchObject({ action: 'complete-switch', attempt: 1, repointSeen: true });
    });

    it.each(['source', 'elsewhere'] as const)('the proxy at the %s, or not looked at: undo on the source', (pointsTo) => {
      expect(recoveryDecision(died, { pointsTo })).toMatchObject({ action: 'undo-freeze', attempt: 1 });
      expect(recoveryDecision(died)).toMatchObject({ action: 'undo-freeze', attempt: 1 });
    });

    it('an undo under way wins over where the proxy points: it finishes putting writes back', () => {
      const undoing = [...died, entry(1, 'cutover', 'unfreeze_source', 'started')];
      expect(recoveryDecision(undoing, { pointsTo: 'target' })).toMatchObject({ action: 'undo-freeze' });
    });
  });

  it('decides on the latest attempt: a second freeze after a resumed one is undone again', () => {
    const journal = [
      ...completeRun(1, 'cutover', ['preconditions', 'freeze', 'fence', 'unfreeze_source']),
      ...completeRun(2, 'cutover', ['preconditions']),
      entry(2, 'cutover', 'freeze', 'started'),
    ];
    expect(recoveryDecision(journal)).toMatchObject({ action: 'undo-freeze', attempt: 2 });
  });

  describe('rollback', () => {
    const switched = completeRun(1, 'cutover', attemptSteps('cutover', 'proxy'));
    const run = completeRun(2, 'rollback', attemptSteps('rollback', 'proxy'));

    it('completes a rollback interrupted anywhere, and settles once the source resumed', () => {
      const actions = prefixes(run).map((p) => recoveryDecision([...switched, ...p]).action);
      expect(actions).toEqual([...Array<string>(run.length - 1).fill('complete-rollback'), 'none']);
      expect(recoveryDecision([...switched, ...run]).settle).toBe('rolled_back');
    });

    it('leaves a put-back rollback alone: writes go to the target', () => {
      const journal = [
        ...switched,
        entry(2, 'rollback', 'rollback_freeze_target', 'started'),
        entry(2, 'rollback', 'rollback_freeze_target', 'done'),
        entry(2, 'rollback', 'rollback_repoint', 'started'),
        entry(2, 'rollback', 'rollback_repoint', 'failed'),
        entry(2, 'rollback', 'rollback_freeze_target', 'undone'),
      ];
      expect(recoveryDecision(journal)).toMatchObject({ action: 'none', settle: 'unchanged' });
    });
  });

  it.each([
    ['finish', 'complete-finish', 'finished'],
    ['abort', 'complete-abort', 'aborted'],
  ] as const)('%s: completes an interrupted stop of the migration, settles when done', (kind, action, settle) => {
    const run = completeRun(3, kind, attemptSteps(kind, 'proxy'));
    for (const p of prefixes(run).slice(0, -1)) expect(recoveryDecision(p).action).toBe(action);
    expect(recoveryDecision(run)).toMatchObject({ action: 'none', settle });
  });

  it('hasSwitched is false until a repoint or a migration stop completes within a cutover', () => {
    expect(hasSwitched(completeRun(1, 'cutover', ['preconditions', 'freeze', 'fence', 'sequences']))).toBe(false);
    expect(hasSwitched([entry(1, 'cutover', 'repoint', 'started')])).toBe(false);
    expect(hasSwitched([entry(1, 'cutover', 'repoint', 'done')])).toBe(true);
    expect(hasSwitched([entry(1, 'finish', 'stop_migration', 'done')])).toBe(false);
  });
});
