// Browser test of the drill-down: from a count in the summary to its events and to one event, in headless
// Chromium against the seeded service. What the page lists must be what ListEvents answers over REST, in the
// same order, and a filter the API refuses must show the API's own description of why.
//
// Environment: as dashboard.test.mjs (run-browser-test.sh sets it).

import assert from "node:assert/strict";
import { join } from "node:path";
import { before, test } from "node:test";

import { ARTIFACTS, env, launch, settled } from "./browser.mjs";
import { DRILL, events as seeded, TIME_ZONE, WEEK_LAST_DAY, WEEKS } from "./seed.mjs";

const BASE = env("AUDIT_BASE_URL");
const READ_TOKEN = env("READ_TOKEN");
const RANGE = WEEKS[DRILL.span];
const FILTER = `action = "${DRILL.action}" AND timestamp >= "${RANGE.start}" AND timestamp < "${RANGE.end}"`;

async function rest(path, query = {}) {
  const response = await fetch(`${BASE}${path}?${new URLSearchParams(query)}`, {
    headers: { authorization: `Bearer ${READ_TOKEN}` },
  });
  return { status: response.status, body: await response.json() };
}

/** Every page of a REST listing, in the API's order. */
async function listAll(filter, organization) {
  const all = [];
  let token = "";
  do {
    const query = { filter, organization_id: organization, page_size: "50" };
    if (token) query.page_token = token;
    const { status, body } = await rest("/v1/audit/events", query);
    assert.equal(status, 200, JSON.stringify(body));
    all.push(...(body.events ?? []));
    token = body.next_page_token ?? "";
  } while (token);
  return all;
}

/** A timestamp as nanoseconds since the epoch, whatever its precision or spelling. */
function nanos(text) {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(text);
  assert.ok(match, `an RFC 3339 Z time: ${text}`);
  return BigInt(Date.parse(`${match[1]}Z`)) * 1_000_000n + BigInt((match[2] ?? "").padEnd(9, "0"));
}

const party = (value) => (value && (value.type || value.id) ? `${value.type}:${value.id}` : "–");

/** Waits until the listing's newest request has rendered, and for at least `rows` rows when given. */
async function listed(page, rows = 0) {
  await page.waitForFunction(
    (least) => {
      const section = document.getElementById("events");
      const state = section?.dataset.state;
      const count = document.querySelectorAll("#events-table tbody tr[data-id]").length;
      return !section?.hidden && state !== undefined && state !== "loading" && (state === "error" || count >= least);
    },
    rows,
    { timeout: 30_000 },
  );
  return page.locator("#events").getAttribute("data-state");
}

async function readRows(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("#events-table tbody tr[data-id]")].map((tr) => ({
      id: tr.dataset.id,
      organization: tr.dataset.org,
      time: tr.querySelector("time")?.getAttribute("datetime"),
      shown: tr.querySelector("time")?.textContent,
      actor: tr.querySelector('[data-field="actor"]')?.textContent,
      target: tr.querySelector('[data-field="target"]')?.textContent,
      result: tr.querySelector('[data-field="result"]')?.textContent,
      ip: tr.querySelector('[data-field="ip"]')?.textContent,
    })),
  );
}

/** Clicks "Load more" until the listing says it is complete; answers how many times it took. */
async function loadToTheEnd(page) {
  let clicks = 0;
  while (await page.locator("#events-more").isVisible()) {
    const before = await page.locator("#events-table tbody tr[data-id]").count();
    await page.click("#events-more");
    assert.equal(await listed(page, before + 1), "loaded");
    clicks += 1;
    assert.ok(clicks < 100, "the listing ends");
  }
  assert.equal(await page.locator("#events").getAttribute("data-complete"), "true");
  return clicks;
}

async function dialogShown(page) {
  await page.waitForFunction(() => {
    const dialog = document.getElementById("event");
    return dialog?.open && (dialog.dataset.state === "loaded" || dialog.dataset.state === "error");
  });
  return page.locator("#event").getAttribute("data-state");
}

async function readDialog(page) {
  return page.evaluate(() => ({
    fields: Object.fromEntries([...document.querySelectorAll("#event-fields dd[data-field]")].map((dd) => [dd.dataset.field, dd.textContent])),
    time: document.querySelector("#event-fields time")?.getAttribute("datetime"),
    details: document.getElementById("event-details")?.textContent,
  }));
}

const dialogOpen = (page) => page.evaluate(() => document.getElementById("event").open);
const query = (page) => Object.fromEntries(new URL(page.url()).searchParams);

let page;
let expected;

before(async () => {
  page = await launch({ timezoneId: TIME_ZONE });
  expected = await listAll(FILTER, DRILL.organization);
});

test("the API lists exactly the seeded events of the action, newest first", () => {
  const ids = seeded()
    .filter((e) => e.organization_id === DRILL.organization && e.action === DRILL.action)
    .map((e) => e.id);
  assert.deepEqual(new Set(expected.map((e) => e.id)), new Set(ids));
  assert.equal(expected.length, ids.length);
  assert.ok(expected.length > 50, "more than one page of the dashboard's");
  for (let i = 1; i < expected.length; i++) {
    assert.ok(nanos(expected[i - 1].timestamp) >= nanos(expected[i].timestamp), "newest first");
  }
});

test("clicking an action lists its week's events, page by page, exactly as ListEvents does", async () => {
  await page.goto(BASE);
  await page.fill("#token", READ_TOKEN);
  await page.fill("#organization", DRILL.organization);
  await page.fill("#week-end", WEEK_LAST_DAY);
  await page.click("#load");
  assert.equal(await settled(page), "loaded");

  await page.click(`#summary tbody tr[data-action="${DRILL.action}"] th a`);
  assert.equal(await listed(page), "loaded");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "events-heading", "focus moves to the listing");
  assert.equal(await page.locator("#events-heading").textContent(), `Events of ${DRILL.action}, this week`);
  assert.equal(await page.locator("#filter").inputValue(), FILTER);
  assert.deepEqual(query(page), { week: WEEK_LAST_DAY, org: DRILL.organization, action: DRILL.action, span: "current", filter: FILTER });
  assert.equal(await page.locator("#events-table tbody tr[data-id]").count(), 50, "one page of 50");

  const clicks = await loadToTheEnd(page);
  assert.equal(clicks, Math.ceil(expected.length / 50) - 1, "Load more until the last page");
  const rows = await readRows(page);
  assert.deepEqual(
    rows.map((r) => `${r.organization}/${r.id}`),
    expected.map((e) => `${e.organization_id}/${e.id}`),
    "the same events in the same order as ListEvents",
  );
  rows.forEach((row, i) => {
    const event = expected[i];
    assert.equal(nanos(row.time), nanos(event.timestamp), `${row.id}: time`);
    assert.match(row.shown, /\b(EST|EDT)\b/, "shown in the browser's time zone");
    assert.deepEqual(
      [row.actor, row.target, row.result, row.ip],
      [party(event.actor), party(event.target), event.result, event.ip || "–"],
      `${row.id}: the row's fields`,
    );
  });
  assert.match(await page.locator("#events-status").textContent(), new RegExp(`All ${expected.length} matching events`));
  await page.screenshot({ path: join(ARTIFACTS, "dashboard-events.png"), fullPage: true });
  assert.deepEqual(page.problems, []);
});

test("a row opens the whole event as GetEvent reads it; Escape closes it and Back retraces", async () => {
  const chosen = expected[57];
  await page.locator(`#events-table tbody tr[data-id="${chosen.id}"] [data-field="target"]`).click();
  assert.equal(await dialogShown(page), "loaded");
  assert.deepEqual(
    { event: query(page).event, event_org: query(page).event_org },
    { event: chosen.id, event_org: chosen.organization_id },
  );
  const { status, body: event } = await rest(`/v1/audit/events/${encodeURIComponent(chosen.id)}`, { organization_id: chosen.organization_id });
  assert.equal(status, 200, JSON.stringify(event));
  assert.equal(typeof event.log_index, "number", "log_index is a JSON number");
  const shown = await readDialog(page);
  assert.deepEqual(shown.fields, {
    id: event.id,
    timestamp: shown.fields.timestamp,
    organization_id: event.organization_id,
    action: event.action,
    actor: party(event.actor),
    target: party(event.target),
    result: event.result,
    ip: event.ip,
    user_agent: event.user_agent,
    log_index: String(event.log_index),
  });
  assert.equal(nanos(shown.time), nanos(event.timestamp));
  assert.deepEqual(JSON.parse(shown.details), event.details, "the details, as the API has them");
  assert.match(shown.details, /\n {2}"/, "pretty-printed");
  await page.screenshot({ path: join(ARTIFACTS, "dashboard-event.png") });

  await page.keyboard.press("Escape");
  await page.waitForFunction(() => !document.getElementById("event").open && !new URL(location.href).searchParams.has("event"));
  assert.equal(
    await page.evaluate(() => document.activeElement?.closest("tr")?.dataset.id),
    chosen.id,
    "focus returns to the event's row",
  );

  // Enter on a row's link opens it too; Back closes it, Back again leaves the drill-down, Forward returns.
  const other = expected[3];
  await page.locator(`#events-table tbody tr[data-id="${other.id}"] a`).focus();
  await page.keyboard.press("Enter");
  assert.equal(await dialogShown(page), "loaded");
  assert.equal((await readDialog(page)).fields.id, other.id);
  await page.goBack();
  await page.waitForFunction(() => !document.getElementById("event").open);
  assert.equal(query(page).event, undefined);
  assert.ok(await page.locator("#events").isVisible());
  await page.goBack();
  await page.waitForFunction(() => document.getElementById("events").hidden);
  assert.equal(query(page).filter, undefined);
  await page.goForward();
  assert.equal(await listed(page), "loaded");
  assert.equal(query(page).filter, FILTER);
  assert.deepEqual(page.problems, []);
});

/** The address of the drill-down with `chosen` open, as a viewer would share it. */
function sharedAddress(chosen) {
  const address = new URL(BASE);
  address.search = new URLSearchParams({
    week: WEEK_LAST_DAY,
    org: DRILL.organization,
    action: DRILL.action,
    span: "current",
    filter: FILTER,
    event: chosen.id,
    event_org: chosen.organization_id,
  }).toString();
  return address.href;
}

test("a shared address restores the listing and the open event", async () => {
  const chosen = expected[10];
  await page.goto(sharedAddress(chosen));
  assert.equal(await settled(page), "loaded");
  assert.equal(await dialogShown(page), "loaded");
  assert.equal((await readDialog(page)).fields.id, chosen.id);
  assert.equal(await listed(page, 50), "loaded");
  assert.equal(await page.locator("#filter").inputValue(), FILTER);
  await page.click("#event-close");
  await page.waitForFunction(() => !new URL(location.href).searchParams.has("event"));
  assert.equal(await dialogOpen(page), false);
  assert.equal(query(page).filter, FILTER, "closing the event keeps the listing");
});

test("in a new tab (no token yet) a shared address waits for the token, then shows the listing and the event", async () => {
  const chosen = expected[99];
  const tab = await launch({ timezoneId: TIME_ZONE });
  await tab.goto(sharedAddress(chosen));
  assert.equal(await settled(tab), "idle");
  assert.equal(await listed(tab), "idle");
  assert.match(await tab.locator("#events-status").textContent(), /Paste a bearer token/);
  assert.equal(await dialogOpen(tab), false, "no dialog over the token field");
  await tab.fill("#token", READ_TOKEN);
  await tab.click("#load");
  assert.equal(await settled(tab), "loaded");
  assert.equal(await dialogShown(tab), "loaded");
  assert.equal((await readDialog(tab)).fields.id, chosen.id);
  assert.equal(await listed(tab, 50), "loaded");
  assert.equal(query(tab).event, chosen.id, "the address still names the event");
  assert.deepEqual(tab.problems, []);
});

test("the filter box applies the filter language and shows the API's error description beside it", async () => {
  const failures = `${FILTER} AND result = "failure"`;
  await page.fill("#filter", failures);
  await page.press("#filter", "Enter");
  assert.equal(await listed(page), "loaded");
  await loadToTheEnd(page);
  const wanted = await listAll(failures, DRILL.organization);
  assert.ok(wanted.length > 0 && wanted.every((e) => e.result === "failure"));
  assert.deepEqual((await readRows(page)).map((r) => r.id), wanted.map((e) => e.id));
  assert.equal(await page.locator("#events-heading").textContent(), "Events matching the filter");
  assert.equal(query(page).filter, failures);

  const bad = `action = "${DRILL.action}" AND actr.id = "usr_1"`;
  await page.fill("#filter", bad);
  await page.click("#filter-apply");
  assert.equal(await listed(page), "error");
  const { status, body } = await rest("/v1/audit/events", { filter: bad, organization_id: DRILL.organization });
  assert.equal(status, 400);
  const violation = body.error.details
    .filter((d) => d["@type"] === "type.googleapis.com/google.rpc.BadRequest")
    .flatMap((d) => d.fieldViolations)
    .find((v) => v.field === "filter");
  assert.ok(violation, JSON.stringify(body));
  assert.match(violation.description, /position \d+/);
  await page.locator("#filter-error").waitFor({ state: "visible" });
  assert.equal(await page.locator("#filter-error").textContent(), violation.description);
  assert.equal(await page.locator("#filter").getAttribute("aria-invalid"), "true");
  assert.match(await page.locator("#filter").getAttribute("aria-describedby"), /\bfilter-error\b/);
  assert.equal(await page.locator("#filter-error").getAttribute("aria-live"), "assertive");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "filter", "focus stays in the box");
  const position = Number(/position (\d+)/.exec(violation.description)[1]);
  assert.equal(await page.evaluate(() => document.getElementById("filter").selectionStart), position, "the caret at the position");
  assert.equal(await page.locator("#events-table tbody tr[data-id]").count(), 0, "no rows beside a refused filter");
  await page.screenshot({ path: join(ARTIFACTS, "dashboard-filter-error.png"), fullPage: true });

  await page.fill("#filter", FILTER);
  await page.press("#filter", "Enter");
  assert.equal(await listed(page, 50), "loaded");
  assert.equal(await page.locator("#filter").getAttribute("aria-invalid"), null);
  assert.equal(await page.locator("#filter-error").textContent(), "");
  await page.click("#events-close");
  await page.waitForFunction(() => document.getElementById("events").hidden);
  assert.deepEqual(page.problems, []);
});
