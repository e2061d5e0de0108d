import { describe, expect, it } from 'vitest';
import { splitBrainFinding, type SourceClient } from '../../src/domain/split-brain.js';

const client = (pid: number, applicationName: string, writing = false): SourceClient => ({ pid, address: '10.0.0.9', applicationName, user: 'app', writing });

describe('splitBrainFinding', () => {
  it('is nothing when nothing was written', () => {
    expect(splitBrainFinding({ transactions: 0, changes: 0, tables: [] }, [client(1, 'rogue')], 'pgcutover')).toBeNull();
  });

  it('names the sessions that are not the bot’s, writers first', () => {
    const writes = { transactions: 2, changes: 5, tables: ['public.orders'] };
    const finding = splitBrainFinding(writes, [client(3, 'psql'), client(1, 'pgcutover'), client(7, 'billing', true)], 'pgcutover');
    expect(finding).toEqual({ writes, clients: [client(7, 'billing', true), client(3, 'psql')] });
  });
});
