/**
 * Slack ids as they arrive in requests, checked with zod at the listener boundary: anything else (a
 * NUL, a quote, a megabyte) is refused with a clear answer before it reaches the store or a log line.
 * Real ids are upper-case letters and digits; `_` is allowed for test fixtures such as `T_TEST`.
 */
import { z } from 'zod';

const id = (prefixes: string, what: string) => z.string().regex(new RegExp(`^[${prefixes}][A-Z0-9_]{1,30}$`), `is not a Slack ${what} id`);

export const userIdSchema = id('UW', 'user');
export const channelIdSchema = id('CGD', 'channel');
export const teamIdSchema = id('TE', 'team');

/** The first problem, naming the field ("the user id is not a Slack user id"), never echoing its value. */
export function firstProblem(error: z.ZodError, names: Record<string, string>): string {
  const issue = error.issues[0];
  const key = String(issue?.path[0] ?? '');
  return `${names[key] ?? key} ${issue?.code === 'invalid_type' ? 'is missing or not text' : (issue?.message ?? 'is malformed')}`;
}
