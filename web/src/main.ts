// The dashboard's controller: reads the form, asks for both weeks at once, and renders table, totals, chart,
// ranges and errors. Built with DOM calls only (no innerHTML), which keeps it compatible with Trusted Types.

import { recordView, readView, viewAddress, type Drill, type Span, type View } from "./address";
import { explain, weekSummary, type Explained } from "./api";
import { renderChart } from "./chart";
import { breakable, byId, element, plainClick } from "./dom";
import { showDrill, wireDrill } from "./drill";
import { actionFilter } from "./events";
import { formatChange, formatCount, formatLocal, formatRate, formatUtc, timeZoneName } from "./format";
import { DEFAULT_SORT, firstDirection, mergeWeeks, sortRows, totals, type Row, type Sort, type SortKey } from "./rows";
import { fetchDemoToken, readClaims, storedToken, storeToken, type Claims } from "./token";
import { parseDay, shiftDay, today, weeksEnding, type Range, type Weeks } from "./week";

type State = "idle" | "loading" | "loaded" | "error";

// Registered before anything else runs, so that even a failure while setting up is reported on the page.
window.addEventListener("error", (event) => reportCrash(event.error ?? event.message));
window.addEventListener("unhandledrejection", (event) => reportCrash(event.reason));

/** Whatever breaks, the viewer reads about it instead of a page that silently does nothing. */
function reportCrash(reason: unknown): void {
  const box = document.getElementById("error");
  const title = document.getElementById("error-title");
  const detail = document.getElementById("error-detail");
  document.getElementById("results")?.setAttribute("data-state", "error");
  if (!box || !title || !detail) return;
  title.textContent = "The dashboard itself failed";
  detail.textContent = `${reason instanceof Error ? reason.message : String(reason)}. Reloading the page may help.`;
  box.dataset.code = "INTERNAL";
  box.hidden = false;
}

const ui = {
  form: byId<HTMLFormElement>("controls"),
  token: byId<HTMLInputElement>("token"),
  tokenReveal: byId<HTMLButtonElement>("token-reveal"),
  tokenForget: byId<HTMLButtonElement>("token-forget"),
  tokenInfo: byId<HTMLParagraphElement>("token-info"),
  weekEnd: byId<HTMLInputElement>("week-end"),
  weekPrev: byId<HTMLButtonElement>("week-prev"),
  weekNext: byId<HTMLButtonElement>("week-next"),
  weekToday: byId<HTMLButtonElement>("week-today"),
  organization: byId<HTMLInputElement>("organization"),
  results: byId<HTMLElement>("results"),
  ranges: byId<HTMLDListElement>("ranges"),
  error: byId<HTMLDivElement>("error"),
  errorTitle: byId<HTMLParagraphElement>("error-title"),
  errorDetail: byId<HTMLParagraphElement>("error-detail"),
  status: byId<HTMLParagraphElement>("status"),
  tableScroll: byId<HTMLDivElement>("table-scroll"),
  table: byId<HTMLTableElement>("summary"),
  chart: byId<HTMLElement>("chart"),
  chartBars: byId<HTMLDivElement>("chart-bars"),
};

const page = {
  sort: DEFAULT_SORT as Sort,
  rows: undefined as Row[] | undefined,
  demo: false,
  /** Only the latest request may render: an older one finishing late must not overwrite it. */
  generation: 0,
  /** The week and organization the summary was last asked for: drill-down links and listings use the same. */
  weeks: undefined as Weeks | undefined,
  organization: "",
  drill: undefined as Drill | undefined,
  inFlight: undefined as AbortController | undefined,
};

function setState(state: State): void {
  ui.results.dataset.state = state;
  ui.results.setAttribute("aria-busy", String(state === "loading"));
}

function claims(): Claims | undefined {
  return readClaims(ui.token.value.trim());
}

function renderTokenInfo(): void {
  const token = ui.token.value.trim();
  if (!token) {
    ui.tokenInfo.textContent = "";
    return;
  }
  const c = readClaims(token);
  if (!c) {
    ui.tokenInfo.textContent = "This does not look like a JWT; the service will say whether it accepts it.";
    return;
  }
  const reach = c.organization ? `confined to ${c.organization}` : "platform-wide";
  const scopes = c.scopes.length ? c.scopes.join(" ") : "no scopes";
  const expiry = c.expiresAt
    ? `${c.expiresAt.getTime() <= Date.now() ? "expired" : "expires"} ${formatLocal(c.expiresAt)} (${formatUtc(c.expiresAt)})`
    : "no expiry claim";
  ui.tokenInfo.textContent = `${page.demo ? "Demo token from this demo server: " : "Token: "}${scopes}, ${reach}, ${expiry}.`;
}

function renderRange(term: string, range: Range): void {
  const local = element(
    "span",
    {},
    element("time", { datetime: range.start.toISOString() }, formatLocal(range.start)),
    " → ",
    element("time", { datetime: range.end.toISOString() }, formatLocal(range.end)),
  );
  const utc = element("span", { class: "utc" }, ` (UTC ${formatUtc(range.start)} → ${formatUtc(range.end)})`);
  ui.ranges.append(
    element("dt", {}, term),
    element("dd", { "data-start": range.start.toISOString(), "data-end": range.end.toISOString() }, local, utc),
  );
}

function renderRanges(weeks: Weeks, organization: string): void {
  ui.ranges.replaceChildren();
  renderRange("This week", weeks.current);
  renderRange("Last week", weeks.previous);
  const c = claims();
  const scope = organization
    ? organization
    : c?.organization
      ? `the token's own (${c.organization})`
      : c
        ? "all organizations (platform-wide token)"
        : "the token's own, or all for a platform-wide token";
  ui.ranges.append(
    element("dt", {}, "Organization"),
    element("dd", { id: "scope" }, scope),
    element("dt", {}, "Time zone"),
    element("dd", {}, `${timeZoneName()}; ranges are from the first instant to just before the second`),
  );
}

function showError(problem: Explained): void {
  ui.errorTitle.textContent = problem.title;
  ui.errorDetail.textContent = problem.detail;
  ui.error.dataset.code = problem.code;
  ui.error.hidden = false;
}

function clearError(): void {
  ui.error.hidden = true;
  delete ui.error.dataset.code;
}

function clearResults(): void {
  page.rows = undefined;
  ui.table.tBodies[0]?.replaceChildren();
  ui.table.tFoot?.replaceChildren();
  // An empty table under an error would read as "no events"; nothing is shown instead.
  ui.tableScroll.hidden = true;
  ui.chartBars.replaceChildren();
  ui.chart.hidden = true;
}

function numberCell(value: bigint, text = formatCount(value)): HTMLTableCellElement {
  return element("td", { "data-value": value.toString() }, text);
}

function rowCells(row: Row): HTMLElement[] {
  const change = element(
    "td",
    { "data-value": row.change === null ? "new" : String(row.change) },
    formatChange(row.change),
  );
  if (row.change !== null && row.change !== 0) change.className = row.change > 0 ? "up" : "down";
  const label = element("th", { scope: "row", class: "text" }, ...breakable(row.action));
  const drillable = row.action !== TOTAL;
  if (drillable) label.replaceChildren(drillLink(row.action, "current", breakable(row.action), `Events of ${row.action} this week`));
  return [
    label,
    countCell(row, "current", drillable),
    countCell(row, "previous", drillable),
    change,
    numberCell(row.failures),
    element("td", { "data-value": row.failureRate === null ? "" : String(row.failureRate) }, formatRate(row.failureRate)),
  ];
}

/** The totals row's label: not an action, so nothing to drill into. */
const TOTAL = "All actions";

function drillFor(action: string, span: Span): Drill | undefined {
  const range = page.weeks?.[span];
  return range ? { filter: actionFilter(action, range), action, span } : undefined;
}

/** A real link (so it opens in a new tab too) to the events of one action in one of the two weeks. */
function drillLink(action: string, span: Span, content: (Node | string)[], label: string): HTMLElement {
  const drill = drillFor(action, span);
  if (!drill) return element("span", {}, ...content);
  return element("a", { href: viewAddress(viewWith(drill)), "data-span": span, "aria-label": label }, ...content);
}

function countCell(row: Row, span: Span, drillable: boolean): HTMLTableCellElement {
  const value = span === "current" ? row.current : row.previous;
  const cell = numberCell(value);
  const when = span === "current" ? "this week" : "last week";
  if (drillable && value > 0n) {
    cell.replaceChildren(drillLink(row.action, span, [formatCount(value)], `${formatCount(value)} events of ${row.action} ${when}`));
  }
  return cell;
}

function renderTable(): void {
  const rows = page.rows ?? [];
  const body = ui.table.tBodies[0];
  if (!body || !ui.table.tFoot) return;
  for (const th of ui.table.tHead?.querySelectorAll<HTMLTableCellElement>("th[data-key]") ?? []) {
    if (th.dataset.key === page.sort.key) th.setAttribute("aria-sort", page.sort.direction);
    else th.removeAttribute("aria-sort");
  }
  const sorted = sortRows(rows, page.sort);
  ui.tableScroll.hidden = false;
  body.replaceChildren(
    ...(sorted.length
      ? sorted.map((row) => element("tr", { "data-action": row.action }, ...rowCells(row)))
      : [element("tr", { class: "empty" }, element("td", { colspan: "6" }, "No events in either week for this selection."))]),
  );
  ui.table.tFoot.replaceChildren(element("tr", { "data-action": "total" }, ...rowCells(totals(rows))));
  renderChart(sorted, ui.chart, ui.chartBars);
}

function organization(): string {
  return ui.organization.value.trim();
}

function currentWeeks(): Weeks | undefined {
  return weeksEnding(ui.weekEnd.value);
}

/** The page's view with `drill` open: week and organization as last loaded; never the token. */
function viewWith(drill: Drill | undefined): View {
  const lastDay = page.weeks?.lastDay;
  return { week: lastDay && lastDay !== today() ? lastDay : undefined, organization: page.organization, drill };
}

/** Every drill-down step: in the address first (a new entry when the viewer went somewhere), then on the page. */
function navigate(drill: Drill | undefined, push: boolean, focus = false): void {
  page.drill = drill;
  // An event opened from the listing is one step: closing it goes back rather than forward.
  recordView(viewWith(drill), push, push && drill?.event ? { openedEvent: true } : null);
  showDrill(drill, { focus });
}

/**
 * Reads the summary for the week and organization in the form. Another week or organization closes the
 * drill-down; the same one keeps it (read again when the token changed: a shared address opened in a new tab
 * has no token until one is pasted).
 */
async function load(keepDrill = false): Promise<void> {
  const generation = ++page.generation;
  page.inFlight?.abort();
  const token = ui.token.value.trim();
  const weeks = currentWeeks();
  const org = organization();
  clearError();
  if (!weeks) {
    clearResults();
    setState("error");
    showError({ code: "INVALID_ARGUMENT", title: "Pick a valid day", detail: "The week needs its last day, as a date." });
    return;
  }
  renderRanges(weeks, org);
  const sameSelection = page.weeks?.lastDay === weeks.lastDay && page.organization === org;
  page.weeks = weeks;
  page.organization = org;
  if (!keepDrill && page.drill) {
    if (!sameSelection) page.drill = undefined;
    showDrill(page.drill, { focus: false });
  }
  recordView(viewWith(page.drill), false);
  if (!token) {
    clearResults();
    setState("idle");
    ui.status.textContent = "Paste a bearer token with the audit:read scope, then choose Show activity.";
    return;
  }
  const controller = new AbortController();
  page.inFlight = controller;
  setState("loading");
  ui.status.textContent = "Loading both weeks…";
  try {
    const [current, previous] = await Promise.all([
      weekSummary(weeks.current, org, token, controller.signal),
      weekSummary(weeks.previous, org, token, controller.signal),
    ]);
    if (generation !== page.generation) return;
    page.rows = mergeWeeks(current, previous);
    renderTable();
    const total = totals(page.rows);
    ui.status.textContent =
      `${formatCount(BigInt(page.rows.length))} actions, ${formatCount(total.current)} events this week ` +
      `and ${formatCount(total.previous)} last week; loaded ${new Date().toLocaleTimeString()}.`;
    setState("loaded");
  } catch (error) {
    // Superseded by a newer request (which aborted this one): that one reports.
    if (generation !== page.generation || controller.signal.aborted) return;
    clearResults();
    showError(explain(error, { organization: org, claims: claims() }));
    ui.status.textContent = "No numbers shown: the request failed.";
    setState("error");
  } finally {
    if (page.inFlight === controller) page.inFlight = undefined;
  }
}

function setWeek(day: string | undefined): void {
  if (!day) return;
  ui.weekEnd.value = day;
  void load();
}

function wire(): void {
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    void load();
  });
  ui.token.addEventListener("input", () => {
    page.demo = false;
    storeToken(ui.token.value.trim(), false);
    renderTokenInfo();
  });
  ui.tokenReveal.addEventListener("click", () => {
    const reveal = ui.token.type === "password";
    ui.token.type = reveal ? "text" : "password";
    ui.tokenReveal.textContent = reveal ? "Hide" : "Show";
  });
  ui.tokenForget.addEventListener("click", () => {
    ui.token.value = "";
    page.demo = false;
    storeToken("", false);
    renderTokenInfo();
    ui.token.focus();
    void load();
  });
  ui.weekEnd.addEventListener("change", () => {
    if (parseDay(ui.weekEnd.value)) void load();
  });
  ui.weekPrev.addEventListener("click", () => setWeek(shiftDay(ui.weekEnd.value || today(), -7)));
  ui.weekNext.addEventListener("click", () => setWeek(shiftDay(ui.weekEnd.value || today(), 7)));
  ui.weekToday.addEventListener("click", () => setWeek(today()));
  ui.table.addEventListener("click", (event) => {
    const link = (event.target as Element).closest<HTMLAnchorElement>("a[data-span]");
    const action = link?.closest<HTMLTableRowElement>("tr[data-action]")?.dataset.action;
    if (!link || !action || !plainClick(event)) return;
    const drill = drillFor(action, link.dataset.span === "previous" ? "previous" : "current");
    if (!drill) return;
    event.preventDefault();
    navigate(drill, true, true);
  });
  // Back and Forward: the address says what to show; the summary is read again only when its selection changed.
  window.addEventListener("popstate", () => {
    const view = readView();
    const week = view.week && parseDay(view.week) ? view.week : today();
    const changed = week !== page.weeks?.lastDay || view.organization !== page.organization;
    ui.weekEnd.value = week;
    ui.organization.value = view.organization;
    page.drill = view.drill;
    if (changed) void load(true);
    showDrill(view.drill, { focus: false });
  });
  wireDrill({
    token: () => ui.token.value.trim(),
    claims,
    organization: () => page.organization,
    navigate: (drill, push) => navigate(drill, push, false),
    address: (drill) => viewAddress(viewWith(drill)),
  });
  for (const th of ui.table.tHead?.querySelectorAll<HTMLTableCellElement>("th[data-key]") ?? []) {
    th.querySelector("button")?.addEventListener("click", () => {
      const key = th.dataset.key as SortKey;
      page.sort =
        page.sort.key === key
          ? { key, direction: page.sort.direction === "ascending" ? "descending" : "ascending" }
          : { key, direction: firstDirection(key) };
      if (page.rows) renderTable();
      else th.setAttribute("aria-sort", page.sort.direction);
    });
  }
}

async function start(): Promise<void> {
  wire();
  const view = readView();
  ui.weekEnd.value = view.week && parseDay(view.week) ? view.week : today();
  ui.organization.value = view.organization;
  page.drill = view.drill;
  const stored = storedToken();
  // A demo token is offered only by a server in --demo mode; it replaces a stored demo token (the demo may
  // have restarted with a new key) but never a token the viewer pasted.
  const demoToken = !stored || stored.demo ? await fetchDemoToken() : undefined;
  if (demoToken) {
    ui.token.value = demoToken;
    page.demo = true;
    storeToken(demoToken, true);
  } else if (stored) {
    ui.token.value = stored.token;
    page.demo = stored.demo;
  }
  renderTokenInfo();
  // The listing and the event of a shared or reloaded address come with the summary, not after it.
  const summary = load(true);
  showDrill(page.drill, { focus: false });
  await summary;
}

start().catch(reportCrash);
