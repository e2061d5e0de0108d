/**
 * Expands Slack user groups (S…) named in a profile's gates into their members with
 * usergroups.users.list (Tier 2), cached briefly. A group that cannot be read counts as empty:
 * permissions fail closed.
 */
import type { GroupMembers } from '../../domain/gates.js';
import type { Logger } from '../../log.js';
import type { SlackClient } from './slack-client.js';

export class GroupResolver {
  private readonly client: SlackClient;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly ttlMs: number;
  private readonly cache = new Map<string, { at: number; members: Promise<readonly string[]> }>();

  constructor(client: SlackClient, log: Logger, now: () => Date, ttlMs = 60_000) {
    this.client = client;
    this.log = log;
    this.now = now;
    this.ttlMs = ttlMs;
  }

  async members(groupIds: readonly string[]): Promise<GroupMembers> {
    const entries = await Promise.all(groupIds.map(async (id) => [id, await this.membersOf(id)] as const));
    return new Map(entries);
  }

  private membersOf(groupId: string): Promise<readonly string[]> {
    const at = this.now().getTime();
    const cached = this.cache.get(groupId);
    if (cached && at - cached.at < this.ttlMs) return cached.members;
    const members = this.client.usergroups.users
      .list({ usergroup: groupId })
      .then((r) => (r.users ?? []) as readonly string[])
      .catch((error: unknown) => {
        this.log.warn({ err: error, group: groupId }, 'cannot read user group; treating it as empty');
        this.cache.delete(groupId);
        return [] as readonly string[];
      });
    this.cache.set(groupId, { at, members });
    return members;
  }
}
