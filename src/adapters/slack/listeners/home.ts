/**
 * The App Home tab: when a person opens it, publish the active sessions they can see. "Can see" means
 * sessions of the profiles where they are an operator or an approver, directly or through a user
 * group: the people who may act on a session (others follow it in its channel).
 */
import { z } from 'zod';
import type { SessionWithLag } from '../../../reports/session-overview.js';
import type { BoltApp } from '../bolt-app.js';
import { renderHome } from '../home-view.js';
import { userIdSchema } from '../slack-ids.js';
import type { SlackSurface } from '../surface.js';

const homeOpenedSchema = z.object({ user: userIdSchema, tab: z.string() });

/** The sessions of the profiles where `userId` is an operator or approver, newest first. */
async function visibleTo(userId: string, surface: SlackSurface): Promise<SessionWithLag[]> {
  const entries = await surface.overview.active();
  const allowed = new Set<string>();
  for (const name of new Set(entries.map((e) => e.session.profile))) {
    const profile = surface.config.profiles.get(name);
    const roles = profile ? await surface.people.roles(userId, profile) : undefined;
    if (roles?.operator || roles?.approver) allowed.add(name);
  }
  return entries.filter((e) => allowed.has(e.session.profile)).sort((a, b) => b.session.createdAt.getTime() - a.session.createdAt.getTime());
}

export function registerHome(app: BoltApp, surface: SlackSurface): void {
  const log = surface.log.child({ name: 'slack' });
  app.event('app_home_opened', async ({ event, client }) => {
    const opened = homeOpenedSchema.safeParse(event);
    if (!opened.success || opened.data.tab !== 'home') return;
    const userId = opened.data.user;
    try {
      const view = renderHome(await visibleTo(userId, surface), surface.now());
      await client.views.publish({ user_id: userId, view: view as never });
    } catch (err) {
      log.warn({ err, user: userId }, 'the App Home could not be published');
    }
  });
}
