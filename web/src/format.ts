// Number and date formatting in the viewer's locale and time zone, with UTC alongside so that two people in
// different zones can tell they are looking at the same range.

const counts = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const changes = new Intl.NumberFormat(undefined, {
  style: "percent",
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
  signDisplay: "exceptZero",
});
const rates = new Intl.NumberFormat(undefined, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });
const localTimes = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  timeZoneName: "short",
});

/** Counts are 64-bit in the API: formatted from the bigint itself, never through a lossy Number. */
export function formatCount(value: bigint): string {
  return counts.format(value);
}

/** A week-over-week change; `null` means there was nothing the week before to compare with. */
export function formatChange(change: number | null): string {
  return change === null ? "new" : changes.format(change);
}

export function formatRate(rate: number | null): string {
  return rate === null ? "–" : rates.format(rate);
}

export function formatLocal(date: Date): string {
  return localTimes.format(date);
}

/** `2026-11-16 23:00 UTC`: unambiguous and short. */
export function formatUtc(date: Date): string {
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

export function timeZoneName(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone ?? "local time";
}

const instants = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  fractionalSecondDigits: 3,
  timeZoneName: "short",
});

/** One event's time in the viewer's zone, to the millisecond: events of one login burst differ by less than a second. */
export function formatInstant(date: Date): string {
  return instants.format(date);
}
