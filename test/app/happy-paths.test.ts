/**
 * A whole cutover through the use cases and the real engine, on in-memory ports and fake machines:
 * both strategies, the machines called in the plan's order, each fact recorded once (one audit row
 * per fact, one event per fact, in order), and the people named where they belong.
 */
import { describe, expect, it } from 'vitest';
import { attemptSteps } from '../../src/domain/cutover-plan.js';
import { CHANNEL, House, U, type HouseOptions } from '../support/memory/house.js';
import { TARGET_PASSWORD } from '../support/memory/machines.js';

describe('a cutover on in-memory ports', () => {
  it.each([
    ['the freeze, then the switch', ['freeze', 'switch'] as const],
    ['the switch, then the freeze', ['switch', 'freeze'] as const],
  ])('approve-first (the default flow): both gates approved before anything freezes; %s — the second approval runs the whole cutover', async (_order, gates) => {
    const house = new House({ flow: 'approve-first' });
    const a = house.replica('A');
    const s = await a.startSession('orders');
    const [first, second] = gates;
    const approver = { freeze: U.APP, switch: U.BOB } as const;
    await a.perform(`${first}_request`, s.id, U.OPS);
    await a.perform(`${second}_request`, s.id, U.OPS);
    const waiting = await a.perform(`${first}_approve`, s.id, approver[first]);
    // One approval of the pair freezes nothing: writes keep flowing.
    expect(waiting?.state).toBe('syncing');
    expect(house.world.count('freeze')).toBe(0);
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'gate_approved', gate: first, runs: first === 'freeze' ? 'with_switch' : 'ahead' });

    const switched = await a.perform(`${second}_approve`, s.id, approver[second]);
    expect(switched?.state).toBe('switched');
    expect(house.world).toMatchObject({ frozen: false, pointsTo: 'target' });
    // After the resume, replicating back stops DigitalOcean's migration and subscribes the source from the switch point.
    expect(house.world.effects()).toEqual(['start_migration', 'freeze', 'fence', 'sequences', 'repoint:target', 'resume', 'stop_migration']);
    expect(house.world.reverseEffects()).toEqual(['reverse_prepare', 'reverse_attach']);
    expect(house.world.reverse).toEqual({ slot: true, attachedFrom: '0/4000000' });
    // Nobody was asked anything while writes waited: the channel hears the freeze and the switch afterwards.
    expect(house.factTypes(s.id).slice(-4)).toEqual(['gate_approved', 'frozen', 'switched', 'replicated_back']);
    expect(house.facts(s.id).at(-4)).toMatchObject({ gate: second, runs: second === 'switch' ? 'cutover' : 'now' });
    expect(house.facts(s.id).at(-2)).toMatchObject({ type: 'switched', actor: U.BOB, aheadOfTime: true });
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'replicated_back', outcome: 'on' });
    const journal = await house.store.journal.entries(s.id);
    expect(journal.filter((e) => e.event === 'done').map((e) => e.step)).toEqual(expect.arrayContaining([...attemptSteps('cutover', 'proxy')]));
    expect(await house.store.approvals.open(s.id)).toEqual({});
    const { rows, facts } = await house.auditMatchesFacts(s.id);
    expect(rows).toEqual(facts);
  });

  it('approve-first: a freeze approval that expires before the switch is approved freezes nothing; the switch approval then waits', async () => {
    const house = new House({ flow: 'approve-first' });
    const a = house.replica('A');
    const s = await a.startSession('orders');
    await a.perform('freeze_request', s.id, U.OPS);
    await a.perform('freeze_approve', s.id, U.APP);
    await house.clock.advance(16 * 60_000);
    await a.perform('switch_request', s.id, U.OPS);
    const after = await a.perform('switch_approve', s.id, U.BOB);
    expect(after?.state).toBe('syncing');
    expect(house.world.count('freeze')).toBe(0);
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'gate_approved', gate: 'switch', runs: 'ahead' });
  });

  it('proxy: start, freeze requested by one operator and approved by an approver, switch, finish — each fact once, in order', async () => {
    const house = new House();
    const a = house.replica('A');
    const started = await a.startSession('orders');
    expect(started).toMatchObject({ state: 'syncing', doMigrationId: 'mig-1', statusMessageTs: expect.any(String) });

    await a.perform('freeze_request', started.id, U.OPS);
    const frozen = await a.perform('freeze_approve', started.id, U.APP);
    expect(frozen?.state).toBe('frozen');
    expect(house.world.frozen).toBe(true);

    await a.perform('switch_request', started.id, U.OPS);
    const switched = await a.perform('switch_approve', started.id, U.BOB);
    expect(switched?.state).toBe('switched');
    expect(house.world).toMatchObject({ frozen: false, pointsTo: 'target' });

    const finished = await a.perform('finish', started.id, U.OPS);
    expect(finished?.state).toBe('finished');
    expect(house.world.migration?.status).toBe('canceled');

    // The machines, in the plan's order: freeze → fence → sequences → repoint → resume → replicate back (the
    // migration stopped); finish removes the reverse replication (the migration is already stopped).
    expect(house.world.effects()).toEqual(['start_migration', 'freeze', 'fence', 'sequences', 'repoint:target', 'resume', 'stop_migration']);
    expect(house.world.reverseEffects()).toEqual(['reverse_prepare', 'reverse_attach', 'reverse_drop']);
    expect(house.world.reverse.slot).toBe(false);
    const journal = await house.store.journal.entries(started.id);
    expect(journal.filter((e) => e.kind === 'cutover' && e.event === 'done').map((e) => e.step)).toEqual([...attemptSteps('cutover', 'proxy')]);

    expect(house.factTypes(started.id)).toEqual([
      'session_started',
      'migration_started',
      'gate_requested',
      'gate_approved',
      'frozen',
      'awaiting_switch',
      'gate_requested',
      'gate_approved',
      'switched',
      'replicated_back',
      'finished',
    ]);
    const facts = house.facts(started.id);
    expect(facts.find((f) => f.type === 'frozen')).toMatchObject({ actor: U.APP, requestedBy: U.OPS, approvedBy: U.APP });
    expect(facts.find((f) => f.type === 'switched')).toMatchObject({ actor: U.BOB, aheadOfTime: false, recovered: false, strategy: 'proxy', targetDatabase: 'orders' });
    expect(facts.find((f) => f.type === 'finished')).toMatchObject({
      actor: U.OPS,
      summary: {
        ran: true,
        sequencesCopied: 3,
        writesHeld: 7,
        approvals: { freeze: { requestedBy: U.OPS, approvedBy: U.APP }, switch: { requestedBy: U.OPS, approvedBy: U.BOB, aheadOfTime: false } },
      },
    });
    const { rows, facts: expected } = await house.auditMatchesFacts(started.id);
    expect(rows).toEqual(expected);
    // Both gate requests were closed by what executed them.
    expect((await house.store.approvals.forSession(started.id)).map((r) => `${r.gate}:${r.status}`)).toEqual(['freeze:executed', 'switch:executed']);
  });

  it('connection parameters: freeze, fence, sequences, stop the migration, hand out the target (password masked); the source stays frozen', async () => {
    const house = new House();
    const a = house.replica('A');
    const s = await a.startSession('catalog');
    // The switch approved ahead of time: the freeze runs straight through to the hand-out.
    await a.perform('switch_request', s.id, U.OPS);
    await a.perform('switch_approve', s.id, U.BOB);
    await a.perform('freeze_request', s.id, U.OPS);
    await house.clock.advance(60_000);
    const switched = await a.perform('freeze_approve', s.id, U.APP);
    expect(switched?.state).toBe('switched');
    expect(house.world.effects()).toEqual(['start_migration', 'freeze', 'fence', 'sequences', 'stop_migration', 'target_parameters']);
    expect(house.world.frozen).toBe(true);
    expect(house.world.migration?.status).toBe('canceled');
    const journal = await house.store.journal.entries(s.id);
    expect(journal.filter((e) => e.event === 'done').map((e) => e.step)).toEqual([...attemptSteps('cutover', 'connection-parameters')]);
    expect(journal.find((e) => e.step === 'publish_parameters' && e.event === 'done')?.detail).toEqual({ host: 'db-target.ondigitalocean.com', port: 25060, database: 'catalog', user: 'doadmin' });

    expect(house.factTypes(s.id)).toEqual([
      'session_started',
      'migration_started',
      'gate_requested',
      'gate_approved',
      'gate_requested',
      'gate_approved',
      'frozen',
      'switched',
    ]);
    const sw = house.facts(s.id).find((f) => f.type === 'switched');
    expect(sw).toMatchObject({ actor: U.BOB, aheadOfTime: true, strategy: 'connection-parameters', parameters: { host: 'db-target.ondigitalocean.com', database: 'catalog', sslmode: 'require' } });
    expect(JSON.stringify(house.events)).not.toContain(TARGET_PASSWORD);
    expect(JSON.stringify(await house.store.audit.forSession(s.id))).not.toContain(TARGET_PASSWORD);
    expect(JSON.stringify(journal)).not.toContain(TARGET_PASSWORD);
    const { rows, facts } = await house.auditMatchesFacts(s.id);
    expect(rows).toEqual(facts);
    expect((await house.session(s.id)).channelId).toBe(CHANNEL.catalog);
  });

  it.each(['orders', 'catalog'] as const)('rollback after the switch (%s): the plan’s rollback steps, one rolled_back fact', async (profile) => {
    const house = new House();
    const a = house.replica('A');
    const s = await a.startSession(profile);
    await a.perform('switch_request', s.id, U.OPS);
    await a.perform('switch_approve', s.id, U.BOB);
    await house.clock.advance(60_000);
    await a.perform('freeze_request', s.id, U.OPS);
    expect((await a.perform('freeze_approve', s.id, U.APP))?.state).toBe('switched');
    const before = house.world.effects().length;
    expect((await a.perform('rollback', s.id, U.OPS))?.state).toBe('rolled_back');
    expect(house.world.effects().slice(before)).toEqual(profile === 'orders' ? ['freeze', 'repoint:source', 'resume'] : ['resume']);
    if (profile === 'orders') {
      // The reverse fence and the sequences back before the repoint; the replication removed after the resume.
      expect(house.world.reverseEffects().slice(-3)).toEqual(['reverse_fence', 'reverse_sequences', 'reverse_drop']);
      expect(house.world.calls.indexOf('reverse_sequences')).toBeLessThan(house.world.calls.lastIndexOf('repoint:source'));
    }
    expect(house.world).toMatchObject({ frozen: false, pointsTo: 'source' });
    const journal = await house.store.journal.entries(s.id);
    const strategy = profile === 'orders' ? 'proxy' : 'connection-parameters';
    expect(journal.filter((e) => e.kind === 'rollback' && e.event === 'done').map((e) => e.step)).toEqual([...attemptSteps('rollback', strategy)]);
    expect(house.factTypes(s.id).slice(-1)).toEqual(['rolled_back']);
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'rolled_back', actor: U.OPS, strategy, switchedAt: expect.any(Date), carriedBack: profile === 'orders' });
    // The session stays open after a rollback; ending it is an abort.
    expect((await a.perform('abort', s.id, U.OPS))?.state).toBe('aborted');
    const { rows, facts } = await house.auditMatchesFacts(s.id);
    expect(rows).toEqual(facts);
  });

  it.each([
    ['while syncing', false, ['stop_migration']],
    ['while frozen', true, ['resume', 'stop_migration']],
  ] as const)('abort %s: writes on the source, the migration stopped, one aborted fact', async (_when, freeze, effects) => {
    const house = new House();
    const a = house.replica('A');
    const s = await a.startSession('orders');
    if (freeze) {
      await a.perform('freeze_request', s.id, U.OPS);
      await a.perform('freeze_approve', s.id, U.APP);
    }
    const before = house.world.effects().length;
    expect((await a.perform('abort', s.id, U.OPS))?.state).toBe('aborted');
    expect(house.world.effects().slice(before)).toEqual(effects);
    expect(house.world).toMatchObject({ frozen: false, pointsTo: 'source', migration: { status: 'canceled' } });
    expect(house.factTypes(s.id).at(-1)).toBe('aborted');
    expect(house.factTypes(s.id).filter((t) => t === 'aborted' || t === 'resumed')).toEqual(['aborted']);
    // The freeze's budget timer does not fire on an aborted session.
    await house.clock.advance(120_000);
    expect(house.factTypes(s.id).at(-1)).toBe('aborted');
    expect(house.store.locks.heldBy(a.process)).toEqual([]);
    expect(house.world.open).toBe(0);
    const { rows, facts } = await house.auditMatchesFacts(s.id);
    expect(rows).toEqual(facts);
  });
});

describe('approvals bound to the state they were given in', () => {
  /** Approve-first up to the last approval: OPS requests the freeze and the switch, APP approves the freeze. */
  const freezeApproved = async (options: HouseOptions = {}, before?: (house: House) => void) => {
    const house = new House({ flow: 'approve-first', ...options });
    const a = house.replica('A');
    const s = await a.startSession('orders');
    before?.(house);
    await a.perform('freeze_request', s.id, U.OPS);
    await a.perform('switch_request', s.id, U.OPS);
    await a.perform('freeze_approve', s.id, U.APP);
    return { house, a, s };
  };

  it('each approval records the plan, the lag and the predicted freeze; the summary shows predicted beside actual', async () => {
    const { house, a, s } = await freezeApproved();
    const { freeze } = await house.store.approvals.open(s.id);
    expect(freeze?.binding).toMatchObject({ planHash: expect.stringMatching(/^[0-9a-f]{16}$/), lagBytes: 4096, sourceLsn: '0/3000060', predictedFreezeMs: expect.any(Number), replicatesBack: true });
    await a.perform('switch_approve', s.id, U.BOB);
    await a.perform('finish', s.id, U.OPS);
    const finished = house.facts(s.id).find((f) => f.type === 'finished');
    expect(finished).toMatchObject({ summary: { ran: true, predictedFreezeMs: freeze?.binding?.predictedFreezeMs } });
  });

  it('the plan changed between the approvals and the run: refused with the reason, nothing frozen', async () => {
    const { house, a, s } = await freezeApproved();
    // The proxy's entry is another one now (the profile was edited and the bot restarted, say).
    house.world.routerLabel = 'pgbouncer database orders_v2';
    await expect(a.perform('switch_approve', s.id, U.BOB)).rejects.toMatchObject({ message: expect.stringMatching(/plan changed since <@U0APP> approved the freeze/) });
    expect(house.world.count('freeze')).toBe(0);
    expect((await house.session(s.id)).state).toBe('syncing');
    expect(house.facts(s.id).at(-1)).toMatchObject({ type: 'freeze_refused', reason: expect.stringMatching(/plan changed/) });
  });

  it('a freeze predicted longer than the budget (a long write transaction on the source) is refused before anything freezes', async () => {
    const { house, a, s } = await freezeApproved({ budgetSeconds: 30 }, (h) => {
      h.world.drainMs = 45_000;
    });
    await expect(a.perform('switch_approve', s.id, U.BOB)).rejects.toMatchObject({ message: expect.stringMatching(/predicted freeze is \d+ ms, more than the budget of 30 s/) });
    expect(house.world.count('freeze')).toBe(0);
    expect((await house.session(s.id)).state).toBe('syncing');
  });
});

describe('a router that cannot pause (Pgpool): the freeze is in the source database', () => {
  it('the source stays locked against the application roles after the switch, until a rollback lifts it', async () => {
    const house = new House({ flow: 'approve-first' });
    const a = house.replica('A');
    const s = await a.startSession('pooled');
    await a.perform('freeze_request', s.id, U.OPS);
    await a.perform('switch_request', s.id, U.OPS);
    await a.perform('freeze_approve', s.id, U.APP);
    expect((await a.perform('switch_approve', s.id, U.BOB))?.state).toBe('switched');
    // Writes go to the target through the router; a client that bypasses it still cannot write on the source.
    expect(house.world).toMatchObject({ pointsTo: 'target', frozen: true });
    expect(house.world.effects()).toEqual(['start_migration', 'freeze', 'fence', 'sequences', 'repoint:target', 'stop_migration']);
    const resumed = (await house.store.journal.entries(s.id)).find((e) => e.step === 'resume_target' && e.event === 'done');
    expect(resumed?.detail).toMatchObject({ sourceKeptLocked: true });

    expect((await a.perform('rollback', s.id, U.OPS))?.state).toBe('rolled_back');
    expect(house.world).toMatchObject({ pointsTo: 'source', frozen: false });
  });
});
