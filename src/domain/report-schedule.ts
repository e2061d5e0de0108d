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
    return { ok: true, schedule: { kind: 'cron', expression: text, text } };
  }
  return {
    ok: false,
    message: `"${text}" is not a schedule: use "every 5m", "every 1h", a cron expression like "*/10 * * * *", or "off"`,
  };
}
