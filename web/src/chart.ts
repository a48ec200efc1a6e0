// The bar chart under the table: this week against last week per action, in the table's order, drawn with
// elements sized through the CSSOM (the page's policy forbids style attributes and inline style).

import { breakable, element } from "./dom";
import { formatCount } from "./format";
import type { Row } from "./rows";

/** Bars follow the table's order so that sorting the table rearranges the chart too. */
export function renderChart(rows: Row[], figure: HTMLElement, bars: HTMLElement): void {
  bars.replaceChildren();
  figure.hidden = rows.length === 0;
  let max = 0n;
  for (const r of rows) {
    if (r.current > max) max = r.current;
    if (r.previous > max) max = r.previous;
  }
  bars.setAttribute(
    "aria-label",
    `Bar chart of ${rows.length} actions, this week against last week; the table above has the same numbers.`,
  );
  for (const row of rows) {
    const line = (kind: "current" | "previous", value: bigint, label: string) => {
      const bar = element("span", { class: `bar ${kind}` });
      // CSSOM writes are allowed under a style-src without 'unsafe-inline'; style attributes are not.
      bar.style.width = max === 0n ? "0" : `${(Number((value * 10_000n) / max) / 100) * 0.85}%`;
      return element("div", { class: "bar-line", title: `${label}: ${formatCount(value)}` }, bar, formatCount(value));
    };
    bars.append(
      element(
        "div",
        { class: "chart-row", "data-action": row.action },
        element("span", { class: "chart-label" }, ...breakable(row.action)),
        element(
          "div",
          { class: "chart-bars-pair" },
          line("current", row.current, "This week"),
          line("previous", row.previous, "Last week"),
        ),
      ),
    );
  }
}
