// Turns two summaries (this week, last week) into the dashboard's rows, totals and sort orders.
//
// Counts stay bigint end to end: the API's counts are 64-bit and the totals must be exact; only ratios,
// which are shown rounded anyway, go through floating point.

export interface Counts {
  count: bigint;
  failures: bigint;
}

export interface Row {
  action: string;
  current: bigint;
  previous: bigint;
  failures: bigint;
  /** (current - previous) / previous; null when previous is 0 (a new action: no finite change). */
  change: number | null;
  /** failures / current; null when current is 0 (no events this week to fail). */
  failureRate: number | null;
}

export type SortKey = "action" | "current" | "previous" | "change" | "failures" | "failureRate";
export type Direction = "ascending" | "descending";

export interface Sort {
  key: SortKey;
  direction: Direction;
}

/** The API's own order: most events first, then by name. */
export const DEFAULT_SORT: Sort = { key: "current", direction: "descending" };

/** A row per action seen in either week. */
export function mergeWeeks(current: Map<string, Counts>, previous: Map<string, Counts>): Row[] {
  const actions = new Set([...current.keys(), ...previous.keys()]);
  return [...actions].map((action) => {
    const now = current.get(action) ?? { count: 0n, failures: 0n };
    const before = previous.get(action) ?? { count: 0n, failures: 0n };
    return row(action, now.count, before.count, now.failures);
  });
}

export function totals(rows: Row[]): Row {
  let current = 0n;
  let previous = 0n;
  let failures = 0n;
  for (const r of rows) {
    current += r.current;
    previous += r.previous;
    failures += r.failures;
  }
  return row("All actions", current, previous, failures);
}

function row(action: string, current: bigint, previous: bigint, failures: bigint): Row {
  return {
    action,
    current,
    previous,
    failures,
    change: previous === 0n ? null : ratio(current - previous, previous),
    failureRate: current === 0n ? null : ratio(failures, current),
  };
}

/** A ratio of two bigints as a float, exact enough for a percentage even beyond 2^53. */
function ratio(numerator: bigint, denominator: bigint): number {
  // Scaling before the division keeps six significant decimals without converting huge values first.
  const scaled = (numerator * 1_000_000n) / denominator;
  return Number(scaled) / 1_000_000;
}

/** Numbers start descending (biggest first), names ascending; the first click picks that. */
export function firstDirection(key: SortKey): Direction {
  return key === "action" ? "ascending" : "descending";
}

export function sortRows(rows: Row[], sort: Sort): Row[] {
  const sign = sort.direction === "ascending" ? 1 : -1;
  return [...rows].sort((a, b) => {
    const primary = compare(a, b, sort.key) * sign;
    // Ties read best in name order whichever way the column runs.
    return primary !== 0 ? primary : a.action < b.action ? -1 : a.action > b.action ? 1 : 0;
  });
}

function compare(a: Row, b: Row, key: SortKey): number {
  switch (key) {
    case "action":
      return a.action < b.action ? -1 : a.action > b.action ? 1 : 0;
    case "current":
    case "previous":
    case "failures":
      return a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : 0;
    case "change":
      // A new action grew from nothing: above every finite change.
      return (a.change ?? Infinity) - (b.change ?? Infinity) || 0;
    case "failureRate":
      // An action with no events this week has no rate: below every real one.
      return (a.failureRate ?? -1) - (b.failureRate ?? -1);
  }
}
