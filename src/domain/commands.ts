/**
 * `/migrate …` text → a typed command, with zod. Anything unknown or malformed becomes a problem
 * the person can act on: what was wrong, the usage line, and the closest command by edit distance.
 */
import { z } from 'zod';
import { SETUP_ACTIONS, type SetupAction } from './cluster-setup.js';
import { parseReportSchedule, type ReportSchedule } from './report-schedule.js';

export const VERBS = [
  'help',
  'profiles',
  'start',
  'status',
  'lag',
  'preflight',
  'freeze',
  'switch',
  'resume',
  'rollback',
  'finish',
  'abort',
  'history',
  'report',
  'setup',
] as const;
export type Verb = (typeof VERBS)[number];

export type Command =
  | { kind: 'start'; profile: string; dryRun: boolean }
  | { kind: 'report'; schedule: ReportSchedule }
  /** `confirm`: do it (an operator); without: show what it would do. */
  | { kind: 'setup'; action: SetupAction; confirm: boolean }
  /** `acknowledgeDifferences`: finish although the switch point's verification found differences. */
  | { kind: 'finish'; acknowledgeDifferences: boolean }
  | { kind: Exclude<Verb, 'start' | 'report' | 'setup' | 'finish'> };

export type ParseResult =
  | { ok: true; command: Command }
  | { ok: false; problem: string; usage: string; suggestion?: string };

export const USAGE: Record<Verb, string> = {
  help: '/migrate help',
  profiles: '/migrate profiles',
  start: '/migrate start <profile> [--dry-run]',
  status: '/migrate status',
  lag: '/migrate lag',
  preflight: '/migrate preflight',
  freeze: '/migrate freeze',
  switch: '/migrate switch',
  resume: '/migrate resume',
  rollback: '/migrate rollback',
  finish: '/migrate finish [--acknowledge-differences]',
  abort: '/migrate abort',
  history: '/migrate history',
  report: '/migrate report <every 5m | cron expression | off>',
  setup: `/migrate setup <${SETUP_ACTIONS.join(' | ')}> [--confirm]`,
};

export const DESCRIPTIONS: Record<Verb, string> = {
  help: 'this help',
  profiles: 'the migration profiles this channel may use',
  start: 'start a migration session (`--dry-run`: run every check and print the cutover plan, touching nothing)',
  status: 'the session status (and refresh the live status message)',
  lag: 'replication lag now',
  preflight: 'run the preflight checks',
  freeze: 'request a write freeze (another person approves under the two-person rule)',
  switch: 'request the switch to the target (an approver approves, typing the database name)',
  resume: 'resume writes on the source without switching',
  rollback: 'after a switch: go back to the source',
  finish: 'after a switch: stop the DigitalOcean migration and end the session (`--acknowledge-differences`: although the verification found some)',
  abort: 'end the session without switching',
  history: 'the audit trail of this channel',
  report: 'how often lag reports go to the session thread',
  setup: 'set up the DigitalOcean cluster: add trusted sources, or create the application user (shows the plan; `--confirm` does it)',
};

export const USAGE_LINE = `/migrate ${VERBS.join(' | ')}`;

const PROFILE_NAME = /^[a-z0-9][a-z0-9_-]*$/;

const noArgs = z.object({ args: z.array(z.string()).max(0, 'takes no arguments'), flags: z.array(z.string()).max(0, 'takes no options') });

const startSchema = z.object({
  args: z
    .array(z.string())
    .min(1, 'needs a profile name (see `/migrate profiles`)')
    .max(1, 'takes one profile name')
    .refine((a) => a.every((name) => PROFILE_NAME.test(name)), 'the profile name may only contain a-z, 0-9, - and _'),
  flags: z.array(z.enum(['--dry-run'], { message: 'the only option is --dry-run' })).max(1, 'gives --dry-run more than once'),
});

const setupSchema = z.object({
  args: z.tuple([z.enum(SETUP_ACTIONS, { message: `needs one of: ${SETUP_ACTIONS.join(', ')}` })], { message: `needs one of: ${SETUP_ACTIONS.join(', ')}` }),
  flags: z.array(z.enum(['--confirm'], { message: 'the only option is --confirm' })).max(1, 'gives --confirm more than once'),
});

const finishSchema = z.object({
  args: z.array(z.string()).max(0, 'takes no arguments'),
  flags: z
    .array(z.enum(['--acknowledge-differences'], { message: 'the only option is --acknowledge-differences' }))
    .max(1, 'gives --acknowledge-differences more than once'),
});

const reportSchema = z
  .object({ args: z.array(z.string()).min(1, 'needs a schedule'), flags: z.array(z.string()).max(0, 'takes no options') })
  .transform((input, ctx) => {
    const parsed = parseReportSchedule(input.args.join(' '));
    if (!parsed.ok) {
      ctx.addIssue({ code: 'custom', message: parsed.message });
      return z.NEVER;
    }
    return parsed.schedule;
  });

/** Longer command text is refused unread: nothing /migrate takes comes close (a cron expression is short). */
export const MAX_COMMAND_LENGTH = 500;

export function parseCommand(text: string): ParseResult {
  if (text.length > MAX_COMMAND_LENGTH) {
    return { ok: false, problem: `That command is too long (${text.length} characters; at most ${MAX_COMMAND_LENGTH})`, usage: USAGE_LINE };
  }
  const tokens = text.trim().split(/\s+/).filter((t) => t.length > 0);
  const [first, ...rest] = tokens;
  if (first === undefined) return { ok: true, command: { kind: 'help' } };
  const word = first.toLowerCase();
  const verb = (VERBS as readonly string[]).includes(word) ? (word as Verb) : undefined;
  if (!verb) {
    const suggestion = closestVerb(word);
    return {
      ok: false,
      problem: `\`${truncate(first)}\` is not a /migrate command`,
      usage: USAGE_LINE,
      ...(suggestion ? { suggestion } : {}),
    };
  }
  // A cron expression may contain words that look like flags only with `--`; keep `--x` as flags.
  const flags = verb === 'report' ? [] : rest.filter((t) => t.startsWith('--'));
  const args = verb === 'report' ? rest : rest.filter((t) => !t.startsWith('--'));
  const fail = (error: z.ZodError): ParseResult => ({
    ok: false,
    problem: `\`${verb}\` ${error.issues[0]?.message ?? 'is malformed'}`,
    usage: USAGE[verb],
  });
  if (verb === 'start') {
    const parsed = startSchema.safeParse({ args, flags: flags.map((f) => f.toLowerCase()) });
    if (!parsed.success) return fail(parsed.error);
    return { ok: true, command: { kind: 'start', profile: parsed.data.args[0] as string, dryRun: parsed.data.flags.length > 0 } };
  }
  if (verb === 'setup') {
    const parsed = setupSchema.safeParse({ args: args.map((a) => a.toLowerCase()), flags: flags.map((f) => f.toLowerCase()) });
    if (!parsed.success) return fail(parsed.error);
    return { ok: true, command: { kind: 'setup', action: parsed.data.args[0], confirm: parsed.data.flags.length > 0 } };
  }
  if (verb === 'finish') {
    const parsed = finishSchema.safeParse({ args, flags: flags.map((f) => f.toLowerCase()) });
    if (!parsed.success) return fail(parsed.error);
    return { ok: true, command: { kind: 'finish', acknowledgeDifferences: parsed.data.flags.length > 0 } };
  }
  if (verb === 'report') {
    const parsed = reportSchema.safeParse({ args, flags });
    if (!parsed.success) return fail(parsed.error);
    return { ok: true, command: { kind: 'report', schedule: parsed.data } };
  }
  const parsed = noArgs.safeParse({ args, flags });
  if (!parsed.success) return fail(parsed.error);
  return { ok: true, command: { kind: verb } };
}

/** The closest verb by Levenshtein distance, when it is close enough to be a plausible typo. */
export function closestVerb(word: string): Verb | undefined {
  // A word this much longer than every verb is no typo of one; comparing it would cost O(length).
  if (word.length > LONGEST_VERB + 3) return undefined;
  let best: { verb: Verb; distance: number } | undefined;
  for (const verb of VERBS) {
    const distance = editDistance(word.toLowerCase(), verb);
    if (!best || distance < best.distance) best = { verb, distance };
  }
  if (!best) return undefined;
  const prefix = VERBS.find((v) => v.startsWith(word.toLowerCase()) && word.length >= 2);
  if (prefix) return prefix;
  return best.distance <= Math.max(2, Math.floor(best.verb.length / 3)) ? best.verb : undefined;
}

const LONGEST_VERB = Math.max(...VERBS.map((v) => v.length));

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => d[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

export function helpText(): string {
  return [
    '*/migrate* moves this channel’s database into DigitalOcean managed PostgreSQL and cuts over, gated by people.',
    ...VERBS.map((verb) => `• \`${USAGE[verb]}\` — ${DESCRIPTIONS[verb]}`),
  ].join('\n');
}

/** Whether a command changes something (and so is deduplicated against retries). */
export function isMutating(command: Command): boolean {
  if (command.kind === 'setup') return command.confirm;
  return !['help', 'profiles', 'status', 'lag', 'preflight', 'history'].includes(command.kind);
}

function truncate(text: string, max = 40): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
