// The drill-down under the summary: the events behind a count, newest first, a page at a time (ListEvents with
// its next_page_token), under a filter box that takes the filter language and shows the API's own description
// of what is wrong with a filter beside it. A row opens its whole event (event-view.ts).

import { explain } from "./api";
import type { Drill } from "./address";
import { byId, element, plainClick } from "./dom";
import { errorOffset, exactTime, filterViolation, listEvents, type AuditEvent } from "./events";
import { hideEvent, showEvent, type EventKey } from "./event-view";
import { formatCount, formatInstant } from "./format";
import type { Claims } from "./token";
import { timestampDate } from "@bufbuild/protobuf/wkt";

export interface DrillHost {
  token(): string;
  claims(): Claims | undefined;
  /** The organization the summary was loaded for; the listing reads the same one. */
  organization(): string;
  /** Goes to another drill-down view (undefined: none) as a new history entry or in place. */
  navigate(drill: Drill | undefined, push: boolean): void;
  /** The address of a drill-down view, for links that also open in a new tab. */
  address(drill: Drill): string;
}

const ui = {
  section: byId<HTMLElement>("events"),
  heading: byId<HTMLHeadingElement>("events-heading"),
  close: byId<HTMLButtonElement>("events-close"),
  form: byId<HTMLFormElement>("filter-form"),
  filter: byId<HTMLInputElement>("filter"),
  filterError: byId<HTMLParagraphElement>("filter-error"),
  error: byId<HTMLDivElement>("events-error"),
  errorTitle: byId<HTMLParagraphElement>("events-error-title"),
  errorDetail: byId<HTMLParagraphElement>("events-error-detail"),
  status: byId<HTMLParagraphElement>("events-status"),
  scroll: byId<HTMLDivElement>("events-scroll"),
  table: byId<HTMLTableElement>("events-table"),
  more: byId<HTMLButtonElement>("events-more"),
};

const listing = {
  host: undefined as DrillHost | undefined,
  drill: undefined as Drill | undefined,
  /** Filter and organization of the rows shown: a view with the same pair keeps them (and its pages). */
  key: "",
  events: [] as AuditEvent[],
  next: "",
  inFlight: undefined as AbortController | undefined,
};

function host(): DrillHost {
  if (!listing.host) throw new Error("the drill-down is not wired");
  return listing.host;
}

export function wireDrill(drillHost: DrillHost): void {
  listing.host = drillHost;
  ui.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const filter = ui.filter.value.trim();
    const current = listing.drill;
    // The heading's action and week describe the filter they made; an edited filter is described by itself.
    const same = current && current.filter === filter;
    const next: Drill = same ? { ...current, event: undefined } : { filter };
    if (same) listing.key = "";
    host().navigate(next, !same);
  });
  ui.filter.addEventListener("input", () => ui.filter.removeAttribute("aria-invalid"));
  ui.close.addEventListener("click", () => host().navigate(undefined, true));
  ui.more.addEventListener("click", () => void loadPage(false));
  ui.table.tBodies[0]?.addEventListener("click", (event) => {
    const row = (event.target as Element).closest<HTMLTableRowElement>("tr[data-id]");
    if (!row || !listing.drill) return;
    const link = (event.target as Element).closest("a");
    if (link && !plainClick(event)) return;
    if ((event.target as Element).closest("button, input, select, textarea")) return;
    // A selection made by dragging across a row is not a click on it.
    if (!link && (window.getSelection()?.toString() ?? "") !== "") return;
    event.preventDefault();
    openRow(row);
  });
}

function openRow(row: HTMLTableRowElement): void {
  const drill = listing.drill;
  if (!drill) return;
  host().navigate({ ...drill, event: { id: row.dataset.id ?? "", organization: row.dataset.org ?? "" } }, true);
}

/** Shows `drill` (undefined: hides the drill-down); reads the listing again only when its filter or organization changed. */
export function showDrill(drill: Drill | undefined, options: { focus: boolean }): void {
  listing.drill = drill;
  if (!drill) {
    listing.inFlight?.abort();
    listing.key = "";
    hideEvent();
    ui.section.hidden = true;
    return;
  }
  ui.section.hidden = false;
  const week = drill.span === "previous" ? ", last week" : drill.span === "current" ? ", this week" : "";
  ui.heading.textContent = drill.action !== undefined ? `Events of ${drill.action}${week}` : "Events matching the filter";
  const key = `${host().organization()}\n${drill.filter}\n${host().token()}`;
  if (key !== listing.key) {
    listing.key = key;
    ui.filter.value = drill.filter;
    void loadPage(true);
  }
  // Without a token the event waits in the address: a modal asking for one would hide the token field.
  if (drill.event && host().token()) {
    const opened = drill.event;
    showEvent(opened, host().token(), host().claims(), () => closedByViewer(opened));
  } else if (!drill.event) {
    hideEvent();
  }
  if (options.focus && !drill.event) {
    ui.heading.focus();
    ui.section.scrollIntoView({ block: "start" });
  }
}

/** Escape or Close: the listing again, in place of the event's history entry when it made one. */
function closedByViewer(closed: EventKey): void {
  const drill = listing.drill;
  if (!drill) return;
  if (history.state?.openedEvent) history.back();
  else host().navigate({ ...drill, event: undefined }, false);
  rowLink(closed)?.focus();
}

function rowLink(key: EventKey): HTMLAnchorElement | undefined {
  for (const row of ui.table.tBodies[0]?.rows ?? []) {
    if (row.dataset.id === key.id && row.dataset.org === key.organization) return row.querySelector("a") ?? undefined;
  }
  return undefined;
}

function setState(state: "idle" | "loading" | "loaded" | "error"): void {
  ui.section.dataset.state = state;
  ui.section.setAttribute("aria-busy", String(state === "loading"));
  ui.more.disabled = state === "loading";
}

function showFilterError(description: string): void {
  ui.filterError.textContent = description;
  ui.filter.setAttribute("aria-invalid", "true");
  ui.filter.focus();
  const at = errorOffset(description, ui.filter.value);
  if (at !== undefined) ui.filter.setSelectionRange(at, Math.min(at + 1, ui.filter.value.length));
}

/** The first page (anew) or the next one (appended), with the listing's token. */
async function loadPage(first: boolean): Promise<void> {
  const drill = listing.drill;
  if (!drill) return;
  listing.inFlight?.abort();
  const controller = new AbortController();
  listing.inFlight = controller;
  ui.error.hidden = true;
  if (first) {
    listing.events = [];
    listing.next = "";
    ui.filterError.textContent = "";
    ui.filter.removeAttribute("aria-invalid");
    renderHead();
    ui.table.tBodies[0]?.replaceChildren();
    ui.scroll.hidden = true;
    ui.more.hidden = true;
  }
  const token = host().token();
  if (!token) {
    setState("idle");
    ui.status.textContent = "Paste a bearer token with the audit:read scope to see the events.";
    return;
  }
  setState("loading");
  ui.status.textContent = first ? "Loading events…" : "Loading more events…";
  const organization = host().organization();
  try {
    const page = await listEvents({ filter: drill.filter, organization, pageToken: first ? "" : listing.next }, token, controller.signal);
    if (listing.inFlight !== controller) return;
    const firstNew = listing.events.length;
    listing.events.push(...page.events);
    listing.next = page.next;
    appendRows(page.events);
    ui.section.dataset.complete = String(!page.next);
    ui.more.hidden = !page.next;
    const shown = formatCount(BigInt(listing.events.length));
    ui.status.textContent = listing.events.length === 0
      ? "No events match."
      : page.next
        ? `${shown} events shown, newest first; there are more.`
        : `All ${shown} matching events shown, newest first.`;
    setState("loaded");
    // Keyboard users carry on where the new rows begin instead of at the top of the page.
    if (!first) ui.table.tBodies[0]?.rows[firstNew]?.querySelector("a")?.focus();
    else if (!page.next && document.activeElement === ui.more) ui.heading.focus();
  } catch (error) {
    if (listing.inFlight !== controller || controller.signal.aborted) return;
    const description = filterViolation(error);
    if (description !== undefined) {
      showFilterError(description);
      ui.status.textContent = "The filter was not accepted; no events shown.";
    } else {
      const problem = explain(error, { organization, claims: host().claims() });
      ui.errorTitle.textContent = problem.title;
      ui.errorDetail.textContent = problem.detail;
      ui.error.dataset.code = problem.code;
      ui.error.hidden = false;
      ui.status.textContent = "No events shown: the request failed.";
    }
    // A failed "load more" keeps the rows already read; a failed first page has none to keep.
    if (first) ui.section.dataset.complete = "false";
    setState("error");
  } finally {
    if (listing.inFlight === controller) listing.inFlight = undefined;
  }
}

/** Rows of several organizations say whose they are; a listing of one does not repeat it. */
function showsOrganization(): boolean {
  return host().organization() === "";
}

function renderHead(): void {
  const names = ["Time", "Actor", "Target", "Result", "IP address"];
  if (showsOrganization()) names.push("Organization");
  ui.table.tHead?.replaceChildren(element("tr", {}, ...names.map((name) => element("th", { scope: "col" }, name))));
}

function party(value: { type: string; id: string } | undefined): string {
  return value && (value.type || value.id) ? `${value.type}:${value.id}` : "–";
}

function appendRows(events: AuditEvent[]): void {
  const body = ui.table.tBodies[0];
  const drill = listing.drill;
  if (!body || !drill) return;
  ui.scroll.hidden = false;
  if (listing.events.length === 0) {
    body.replaceChildren(element("tr", { class: "empty" }, element("td", { colspan: "6" }, "No events match this filter.")));
    return;
  }
  for (const event of events) {
    const exact = exactTime(event.timestamp);
    const key = { id: event.id, organization: event.organizationId };
    const when = event.timestamp ? formatInstant(timestampDate(event.timestamp)) : "–";
    const link = element(
      "a",
      { href: host().address({ ...drill, event: key }), "aria-label": `${when}, ${event.action} ${event.result}: open event ${event.id}` },
      element("time", { datetime: exact }, when),
    );
    const cells = [
      element("td", { class: "time" }, link),
      element("td", { "data-field": "actor" }, party(event.actor)),
      element("td", { "data-field": "target" }, party(event.target)),
      element("td", { "data-field": "result", class: event.result === "failure" ? "failure" : "" }, event.result),
      element("td", { "data-field": "ip" }, event.ip || "–"),
    ];
    if (showsOrganization()) cells.push(element("td", { "data-field": "organization_id" }, event.organizationId));
    body.append(element("tr", { "data-id": event.id, "data-org": event.organizationId, "data-time": exact }, ...cells));
  }
}


