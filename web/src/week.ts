// The two ranges the dashboard compares: a week of calendar days in the viewer's time zone, and the week before.
//
// Weeks are whole local days because that is what a person picking "the week ending Sunday" means; near a
// daylight-saving change such a week is 167 or 169 hours long, and the UTC bounds shown on the page say so.

export interface Range {
  /** Inclusive. */
  start: Date;
  /** Exclusive. */
  end: Date;
}

export interface Weeks {
  /** The last day of the chosen week, `YYYY-MM-DD`, a local calendar day. */
  lastDay: string;
  current: Range;
  previous: Range;
}

const DAY_PATTERN = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Today's local calendar day as `YYYY-MM-DD` (the default week ends today: the last 7 days). */
export function today(now: Date = new Date()): string {
  return isoDay(now);
}

/** Parses `YYYY-MM-DD`; undefined for anything else, including days that do not exist. */
export function parseDay(text: string): { year: number; month: number; day: number } | undefined {
  const match = DAY_PATTERN.exec(text.trim());
  if (!match) return undefined;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const probe = new Date(year, month - 1, day);
  // Date rolls 2026-02-30 over into March: a changed field means the day does not exist.
  if (probe.getFullYear() !== year || probe.getMonth() !== month - 1 || probe.getDate() !== day) return undefined;
  return { year, month, day };
}

/** The week whose last day is `lastDay` and the week before it, or undefined when the day is not valid. */
export function weeksEnding(lastDay: string): Weeks | undefined {
  const parsed = parseDay(lastDay);
  if (!parsed) return undefined;
  const { year, month, day } = parsed;
  // The Date constructor normalises day overflow and applies the local offset of each midnight separately.
  const midnight = (offsetDays: number) => new Date(year, month - 1, day + offsetDays);
  return {
    lastDay: isoDay(midnight(0)),
    current: { start: midnight(-6), end: midnight(1) },
    previous: { start: midnight(-13), end: midnight(-6) },
  };
}

/** Moves a `YYYY-MM-DD` day by whole days. */
export function shiftDay(day: string, days: number): string | undefined {
  const parsed = parseDay(day);
  if (!parsed) return undefined;
  return isoDay(new Date(parsed.year, parsed.month - 1, parsed.day + days));
}

function isoDay(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}
