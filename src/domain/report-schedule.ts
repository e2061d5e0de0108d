import { createTask, parse as parseCron, validateDetailed, type ScheduledTask } from 'node-cron';

/** How often a session posts a lag report: a fixed interval, a cron expression, or never. */
export type ReportSchedule =
  | { kind: 'interval'; seconds: number; text: string }
  | { kind: 'cron'; expression: string; text: string }
  | { kind: 'off'; text: string };

export type ParsedSchedule = ({ ok: true } & { schedule: ReportSchedule }) | { ok: false; message: string };

const INTERVAL = /^every\s+(\d+)\s*(s|m|h)$/i;
const UNIT_SECONDS = { s: 1, m: 60, h: 3600 } as const;
const MIN_INTERVAL_SECONDS = 60;
const CRON_FIELD = /^[\d*/,\-A-Za-z?LW#]+$/;

/** Parses `every 5m`, `every 1h`, `off`, or a 5- or 6-field cron expression. */
export function parseReportSchedule(input: string): ParsedSchedule {
  const text = input.trim().replace(/\s+/g, ' ');
  if (text.toLowerCase() === 'off') return { ok: true, schedule: { kind: 'off', text: 'off' } };
  const interval = INTERVAL.exec(text);
  if (interval?.[1] && interval[2]) {
    const unit = interval[2].toLowerCase() as keyof typeof UNIT_SECONDS;
    const seconds = Number(interval[1]) * UNIT_SECONDS[unit];
    if (seconds < MIN_INTERVAL_SECONDS) {
      return { ok: false, message: `"${text}" is too frequent: reports run at most once a minute` };
    }
    return { ok: true, schedule: { kind: 'interval', seconds, text: `every ${interval[1]}${unit}` } };
  }
  const fields = text.split(' ');
  if ((fields.length === 5 || fields.length === 6) && fields.every((f) => CRON_FIELD.test(f))) {
    const validation = validateDetailed(text);
    if (!validation.valid) {
      const why = validation.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
      return { ok: false, message: `"${text}" is not a valid cron expression (${why})` };
    }
    if (fields.length === 6 && (validation.fields?.second.length ?? 1) > 1) {
      return { ok: false, message: `"${text}" is too frequent: reports run at most once a minute` };
    }
    return { ok: true, schedule: { kind: 'cron', expression: text, text } };
  }
  return {
    ok: false,
    message: `"${text}" is not a schedule: use "every 5m", "every 1h", a cron expression like "*/10 * * * *", or "off"`,
  };
}

/**
 * The first tick strictly after `after`, or null for `off`. Intervals are aligned to the Unix epoch
 * (every 5m ticks at :00, :05, …) and cron expressions are read in UTC, so every replica computes the
 * same instants: an instant is the key under which a tick is claimed in the store.
 */
export function nextTick(schedule: ReportSchedule, after: Date): Date | null {
  switch (schedule.kind) {
    case 'off':
      return null;
    case 'interval': {
      const step = schedule.seconds * 1000;
      return new Date((Math.floor(after.getTime() / step) + 1) * step);
    }
    case 'cron':
      return nextCronMatch(schedule.expression, after);
  }
}

/** How far back `latestDueTick` looks: a bot down longer than this skips to the newest tick. */
const CATCH_UP_WINDOW_MS = 8 * 24 * 3600 * 1000;

/**
 * The newest tick in (after, now], or null when none is due. After a pause (a restart, a slow
 * replica) the missed ticks collapse into the newest one: one report, not a burst of stale ones.
 */
export function latestDueTick(schedule: ReportSchedule, after: Date, now: Date): Date | null {
  if (schedule.kind === 'off') return null;
  if (schedule.kind === 'interval') {
    const step = schedule.seconds * 1000;
    const latest = Math.floor(now.getTime() / step) * step;
    return latest > after.getTime() ? new Date(latest) : null;
  }
  const from = new Date(Math.max(after.getTime(), now.getTime() - CATCH_UP_WINDOW_MS));
  let due: Date | null = null;
  for (let t = nextTick(schedule, from); t !== null && t.getTime() <= now.getTime(); t = nextTick(schedule, t)) {
    due = t;
  }
  return due;
}

/** Stopped node-cron tasks used only as matchers (they hold no timer), one per expression. */
const matchers = new Map<string, ScheduledTask>();
const MAX_MATCHERS = 256;

function matcher(expression: string): ScheduledTask {
  let task = matchers.get(expression);
  if (!task) {
    if (matchers.size >= MAX_MATCHERS) {
      for (const old of matchers.values()) void old.destroy();
      matchers.clear();
    }
    task = createTask(expression, () => undefined, { timezone: 'UTC' });
    matchers.set(expression, task);
  }
  return task;
}

const DAY_MS = 24 * 3600 * 1000;
const SEARCH_DAYS = 366 * 5;

/** Walks day by day (UTC); within a matching day, the first listed time of day after `after`. */
function nextCronMatch(expression: string, after: Date): Date | null {
  const fields = parseCron(expression);
  const task = matcher(expression);
  const seconds = [...fields.second].sort((a, b) => a - b);
  const minutes = [...fields.minute].sort((a, b) => a - b);
  const hours = [...fields.hour].sort((a, b) => a - b);
  const [s0, m0, h0] = [seconds[0] ?? 0, minutes[0] ?? 0, hours[0] ?? 0];
  const afterMs = after.getTime();
  const startDay = Math.floor(afterMs / DAY_MS) * DAY_MS;
  for (let i = 0; i < SEARCH_DAYS; i++) {
    const day = startDay + i * DAY_MS;
    // Day-of-month, month and day-of-week hold for the whole day: test them once, at its first listed time.
    if (!task.match(new Date(day + ((h0 * 60 + m0) * 60 + s0) * 1000))) continue;
    for (const h of hours) {
      if (day + (h + 1) * 3600_000 <= afterMs) continue;
      for (const m of minutes) {
        for (const s of seconds) {
          const t = day + ((h * 60 + m) * 60 + s) * 1000;
          if (t > afterMs) return new Date(t);
        }
      }
    }
  }
  return null;
}
