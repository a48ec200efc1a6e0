// One whole event, read with GetEvent and shown in a modal dialog over the listing: every field, the log
// index, and the details as indented JSON. The dialog is the browser's own, so focus stays inside it while
// it is open and Escape closes it.

import { explain } from "./api";
import { byId, element } from "./dom";
import { exactTime, getEvent, type AuditEvent } from "./events";
import { formatInstant } from "./format";
import type { Claims } from "./token";
import { timestampDate } from "@bufbuild/protobuf/wkt";

export interface EventKey {
  id: string;
  organization: string;
}

const ui = {
  dialog: byId<HTMLDialogElement>("event"),
  heading: byId<HTMLHeadingElement>("event-heading"),
  status: byId<HTMLParagraphElement>("event-status"),
  fields: byId<HTMLDListElement>("event-fields"),
  detailsHeading: byId<HTMLHeadingElement>("event-details-heading"),
  details: byId<HTMLPreElement>("event-details"),
  close: byId<HTMLButtonElement>("event-close"),
};

const shown = {
  key: undefined as EventKey | undefined,
  token: "",
  inFlight: undefined as AbortController | undefined,
  /** Called when the viewer closes the dialog (Escape, the Close button), not when the page closes it. */
  onClose: undefined as (() => void) | undefined,
  /** The page closed it: its `close` event, which comes a task later, is not the viewer's doing. */
  closingByPage: false,
};

ui.close.addEventListener("click", () => ui.dialog.close());
ui.dialog.addEventListener("close", () => {
  if (shown.closingByPage) {
    shown.closingByPage = false;
    return;
  }
  shown.inFlight?.abort();
  shown.key = undefined;
  shown.onClose?.();
});

export function openEventKey(): EventKey | undefined {
  return shown.key;
}

/** Opens (or keeps open) the event; the same event again is not read twice. */
export function showEvent(key: EventKey, token: string, claims: Claims | undefined, onClose: () => void): void {
  shown.onClose = onClose;
  const same = shown.key && shown.key.id === key.id && shown.key.organization === key.organization;
  if (same && shown.token === token && ui.dialog.open) return;
  shown.inFlight?.abort();
  shown.key = key;
  shown.token = token;
  ui.heading.textContent = `Event ${key.id}`;
  delete ui.dialog.dataset.code;
  ui.fields.replaceChildren();
  ui.details.textContent = "";
  ui.detailsHeading.hidden = true;
  ui.details.hidden = true;
  if (!ui.dialog.open) ui.dialog.showModal();
  ui.close.focus();
  const controller = new AbortController();
  shown.inFlight = controller;
  ui.dialog.dataset.state = "loading";
  ui.status.textContent = "Loading the event…";
  getEvent(key.id, key.organization, token, controller.signal).then(
    (event) => {
      if (shown.inFlight !== controller) return;
      render(event);
      ui.status.textContent = "";
      ui.dialog.dataset.state = "loaded";
    },
    (error: unknown) => {
      if (shown.inFlight !== controller || controller.signal.aborted) return;
      const problem = explain(error, { organization: key.organization, claims });
      ui.status.textContent = `${problem.title}. ${problem.detail}`;
      ui.dialog.dataset.code = problem.code;
      ui.dialog.dataset.state = "error";
    },
  );
}

/** Closes the dialog because the view no longer has an event open (Back, another listing). */
export function hideEvent(): void {
  shown.key = undefined;
  shown.inFlight?.abort();
  if (ui.dialog.open) {
    shown.closingByPage = true;
    ui.dialog.close();
  }
}

function party(value: { type: string; id: string } | undefined): string {
  return value && (value.type || value.id) ? `${value.type}:${value.id}` : "";
}

function render(event: AuditEvent): void {
  const exact = exactTime(event.timestamp);
  const time = event.timestamp
    ? element("time", { datetime: exact }, formatInstant(timestampDate(event.timestamp)), element("span", { class: "utc" }, ` (${exact})`))
    : "";
  const rows: [string, string, Node | string][] = [
    ["id", "Id", event.id],
    ["timestamp", "Time", time],
    ["organization_id", "Organization", event.organizationId],
    ["action", "Action", event.action],
    ["actor", "Actor", party(event.actor)],
    ["target", "Target", party(event.target)],
    ["result", "Result", event.result],
    ["ip", "IP address", event.ip],
    ["user_agent", "User agent", event.userAgent],
    ["log_index", "Log index", event.logIndex.toString()],
  ];
  ui.fields.replaceChildren(
    ...rows.flatMap(([field, label, value]) => [
      element("dt", {}, label),
      element("dd", { "data-field": field }, value === "" ? element("span", { class: "absent" }, "–") : value),
    ]),
  );
  const hasDetails = event.details !== undefined && Object.keys(event.details).length > 0;
  ui.detailsHeading.hidden = false;
  ui.details.hidden = false;
  ui.details.textContent = hasDetails ? JSON.stringify(event.details, null, 2) : "{}";
}
