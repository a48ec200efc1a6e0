// What the page shows, as the address keeps it: the week, the organization, and when drilling down the
// listing's filter and the event open on top of it. A shared or reloaded address shows the same view; each
// drill-down step is a history entry, so Back retraces them. The token never goes in the address.

export type Span = "current" | "previous";

export interface Drill {
  /** The listing's filter exactly as sent: the times in it are absolute, so the view is the same in any zone. */
  filter: string;
  /** The summary cell it came from, when it did: names the listing in its heading. */
  action?: string;
  span?: Span;
  /** The event open on top of the listing. */
  event?: { id: string; organization: string };
}

export interface View {
  /** The week's last day, `YYYY-MM-DD`; absent: the week ending today. */
  week?: string;
  organization: string;
  drill?: Drill;
}

export function readView(search: string = location.search): View {
  const query = new URLSearchParams(search);
  const view: View = { week: query.get("week") ?? undefined, organization: query.get("org") ?? "" };
  const filter = query.get("filter");
  if (filter !== null) {
    const span = query.get("span");
    const id = query.get("event");
    view.drill = {
      filter,
      action: query.get("action") ?? undefined,
      span: span === "current" || span === "previous" ? span : undefined,
      event: id ? { id, organization: query.get("event_org") ?? "" } : undefined,
    };
  }
  return view;
}

/** The query string of a view, `?…` (or the bare path when there is nothing to keep). */
export function viewAddress(view: View): string {
  const query = new URLSearchParams();
  if (view.week) query.set("week", view.week);
  if (view.organization) query.set("org", view.organization);
  const drill = view.drill;
  if (drill) {
    if (drill.action !== undefined) query.set("action", drill.action);
    if (drill.span) query.set("span", drill.span);
    query.set("filter", drill.filter);
    if (drill.event) {
      query.set("event", drill.event.id);
      if (drill.event.organization) query.set("event_org", drill.event.organization);
    }
  }
  const search = query.toString();
  return search ? `?${search}` : location.pathname;
}

/** Records the view: a new history entry when the viewer went somewhere, else in place. */
export function recordView(view: View, push: boolean, state: unknown = null): void {
  const address = viewAddress(view);
  if (address === (location.search || location.pathname)) return;
  if (push) history.pushState(state, "", address);
  else history.replaceState(history.state, "", address);
}
