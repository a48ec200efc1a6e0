// Browser test of the dashboard: headless Debian Chromium (driven by playwright-core) against the real service
// that web/run-browser-test.sh started and seeded; the numbers on the page must equal the REST API's.
//
// Environment (set by run-browser-test.sh): AUDIT_BASE_URL (seeded server), AUDIT_DEMO_URL (a --demo server),
// READ_TOKEN (platform-wide audit:read), ORG_TOKEN (audit:read confined to org_acme), AUDIT_JWT_SECRET (to make
// an expired token), ARTIFACTS (screenshot folder), UPDATE_DOCS=1 (also write docs/dashboard.png).

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";

import { ARTIFACTS, DOCS_SCREENSHOT, env, launch, settled } from "./browser.mjs";
import { expected, TIME_ZONE, WEEK_LAST_DAY, WEEKS } from "./seed.mjs";

const BASE = env("AUDIT_BASE_URL");
const DEMO = env("AUDIT_DEMO_URL");
const READ_TOKEN = env("READ_TOKEN");
const ORG_TOKEN = env("ORG_TOKEN");
const SECRET = env("AUDIT_JWT_SECRET");

async function readPage(page) {
  return page.evaluate(() => {
    const read = (tr) => {
      const cells = [...tr.children];
      return { action: tr.dataset.action, values: cells.slice(1).map((c) => c.dataset.value), texts: cells.map((c) => c.textContent) };
    };
    return {
      rows: [...document.querySelectorAll("#summary tbody tr[data-action]")].map(read),
      total: [...document.querySelectorAll("#summary tfoot tr")].map(read)[0],
      ranges: [...document.querySelectorAll("#ranges dd[data-start]")].map((dd) => ({ start: dd.dataset.start, end: dd.dataset.end })),
      scope: document.getElementById("scope")?.textContent,
      chart: [...document.querySelectorAll("#chart-bars .chart-row")].map((row) => row.dataset.action),
    };
  });
}

async function apiSummary(base, range, org, token) {
  const query = new URLSearchParams({ start_time: range.start, end_time: range.end });
  if (org) query.set("organization_id", org);
  const response = await fetch(`${base}/v1/audit/events:summary?${query}`, { headers: { authorization: `Bearer ${token}` } });
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  return new Map(body.buckets.map((b) => [b.action, { count: b.count, failures: b.failure_count }]));
}

const count = new Intl.NumberFormat("en-US");
const change = new Intl.NumberFormat("en-US", { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1, signDisplay: "exceptZero" });
const rate = new Intl.NumberFormat("en-US", { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });

/** Every number on the page, raw and as shown, against two API answers. */
function assertPageShows(shown, current, previous, label) {
  const actions = new Set([...current.keys(), ...previous.keys()]);
  assert.deepEqual(new Set(shown.rows.map((r) => r.action)), actions, `${label}: the actions`);
  const check = (row, now, before, failures) => {
    assert.deepEqual(row.values.slice(0, 2), [String(now), String(before)], `${label}: ${row.action} counts`);
    assert.equal(row.values[3], String(failures), `${label}: ${row.action} failures`);
    assert.deepEqual(
      row.texts.slice(1),
      [
        count.format(now),
        count.format(before),
        before === 0 ? "new" : change.format((now - before) / before),
        count.format(failures),
        now === 0 ? "–" : rate.format(failures / now),
      ],
      `${label}: ${row.action} as shown`,
    );
  };
  let sums = [0, 0, 0];
  for (const row of shown.rows) {
    const now = current.get(row.action) ?? { count: 0, failures: 0 };
    const before = previous.get(row.action) ?? { count: 0, failures: 0 };
    check(row, now.count, before.count, now.failures);
    sums = [sums[0] + now.count, sums[1] + before.count, sums[2] + now.failures];
  }
  assert.equal(shown.total.texts[0], "All actions");
  check(shown.total, ...sums);
  // The default order is the API's: count descending, then action; the chart follows the table.
  const order = [...shown.rows].sort((a, b) => Number(b.values[0]) - Number(a.values[0]) || (a.action < b.action ? -1 : 1));
  assert.deepEqual(shown.rows.map((r) => r.action), order.map((r) => r.action), `${label}: default order`);
  assert.deepEqual(shown.chart, order.map((r) => r.action), `${label}: chart order`);
}

function sameCounts(actual, wanted, label) {
  assert.deepEqual(Object.fromEntries(actual), Object.fromEntries(wanted), label);
}

function jwt(claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  return `${unsigned}.${createHmac("sha256", SECRET).update(unsigned).digest("base64url")}`;
}

async function showError(page) {
  await page.locator("#error").waitFor({ state: "visible" });
  return {
    code: await page.locator("#error").getAttribute("data-code"),
    title: await page.locator("#error-title").textContent(),
    detail: await page.locator("#error-detail").textContent(),
    rows: await page.locator("#summary tbody tr").count(),
    heading: await page.locator("h1").isVisible(),
  };
}

let page;

before(async () => {
  page = await launch({ timezoneId: TIME_ZONE });
});

test("the service serves the page with its own headers; /demo-token exists only in demo mode", async () => {
  const index = await fetch(`${BASE}/`);
  assert.equal(index.status, 200);
  assert.equal(index.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(index.headers.get("cache-control"), "no-cache");
  const csp = index.headers.get("content-security-policy") ?? "";
  for (const directive of ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) {
    assert.ok(csp.includes(directive), `CSP has ${directive}: ${csp}`);
  }
  assert.ok(!csp.includes("unsafe"), csp);
  const script = await fetch(`${BASE}/assets/app.js`);
  assert.equal(script.headers.get("content-type"), "text/javascript; charset=utf-8");
  const again = await fetch(`${BASE}/assets/app.js`, { headers: { "if-none-match": script.headers.get("etag") } });
  assert.equal(again.status, 304);
  assert.equal((await fetch(`${BASE}/demo-token`)).status, 404, "no demo token outside --demo");
  const demo = await fetch(`${DEMO}/demo-token`);
  assert.equal(demo.status, 200);
  assert.equal(demo.headers.get("cache-control"), "no-store");
});

test("without a token the page asks for one instead of staying blank", async () => {
  await page.goto(BASE);
  assert.equal(await settled(page), "idle");
  assert.equal(await page.locator("#token").inputValue(), "", "nothing pre-filled outside demo mode");
  assert.match(await page.locator("#status").textContent(), /Paste a bearer token/);
});

test("numbers equal the API's for both weeks; switching the organization changes them", async () => {
  await page.fill("#token", READ_TOKEN);
  await page.fill("#organization", "org_acme");
  await page.fill("#week-end", WEEK_LAST_DAY);
  await page.click("#load");
  assert.equal(await settled(page), "loaded");
  const acme = await readPage(page);
  // The week is seven local days in New York, across the switch to daylight time: 167 hours.
  assert.deepEqual(acme.ranges, [WEEKS.current, WEEKS.previous]);
  assert.equal(acme.scope, "org_acme");
  const [acmeNow, acmeBefore] = await Promise.all([
    apiSummary(BASE, WEEKS.current, "org_acme", READ_TOKEN),
    apiSummary(BASE, WEEKS.previous, "org_acme", READ_TOKEN),
  ]);
  sameCounts(acmeNow, expected("org_acme", "current"), "the API counts the seeded events (this week)");
  sameCounts(acmeBefore, expected("org_acme", "previous"), "the API counts the seeded events (last week)");
  assertPageShows(acme, acmeNow, acmeBefore, "org_acme");
  assert.equal(acme.total.texts[1], "2,052", "thousands separators");
  await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });

  await page.fill("#organization", "org_globex");
  await page.press("#organization", "Enter");
  assert.equal(await settled(page), "loaded");
  const globex = await readPage(page);
  assert.notDeepEqual(globex.rows, acme.rows, "another organization, other numbers");
  assertPageShows(
    globex,
    await apiSummary(BASE, WEEKS.current, "org_globex", READ_TOKEN),
    await apiSummary(BASE, WEEKS.previous, "org_globex", READ_TOKEN),
    "org_globex",
  );

  await page.fill("#organization", "");
  await page.click("#load");
  assert.equal(await settled(page), "loaded");
  const all = await readPage(page);
  assert.equal(all.scope, "all organizations (platform-wide token)");
  const [allNow, allBefore] = [expected("", "current"), expected("", "previous")];
  sameCounts(await apiSummary(BASE, WEEKS.current, "", READ_TOKEN), allNow, "platform-wide, this week");
  assertPageShows(all, allNow, allBefore, "all organizations");
  assert.equal(new URL(page.url()).search, `?week=${WEEK_LAST_DAY}`, "the view is in the address, the token is not");
});

test("the previous-week button moves both weeks back by seven days", async () => {
  await page.click("#week-prev");
  assert.equal(await settled(page), "loaded");
  const shown = await readPage(page);
  assert.equal(await page.locator("#week-end").inputValue(), "2025-03-08");
  assert.deepEqual(shown.ranges[0], WEEKS.previous, "last week becomes this week");
  await page.click("#week-next");
  assert.equal(await settled(page), "loaded");
});

test("columns sort by click and by keyboard; every control is reachable with Tab", async () => {
  await page.fill("#organization", "org_acme");
  await page.click("#load");
  assert.equal(await settled(page), "loaded");
  const actions = async () => (await readPage(page)).rows.map((r) => r.action);
  const header = (key) => page.locator(`th[data-key="${key}"]`);

  await header("previous").locator("button").click();
  assert.equal(await header("previous").getAttribute("aria-sort"), "descending");
  assert.deepEqual((await actions()).slice(0, 3), ["session.login", "oauth.token.issued", "user.created"]);
  await header("previous").locator("button").click();
  assert.equal(await header("previous").getAttribute("aria-sort"), "ascending");
  assert.equal((await actions())[0], "api_key.revoked");

  await header("action").locator("button").focus();
  await page.keyboard.press("Enter");
  assert.equal(await header("action").getAttribute("aria-sort"), "ascending");
  assert.equal(await header("previous").getAttribute("aria-sort"), null);
  const byName = await actions();
  assert.deepEqual(byName, [...byName].sort());
  assert.deepEqual((await readPage(page)).chart, byName, "the chart follows the table's order");
  await page.keyboard.press("Space");
  assert.equal(await header("action").getAttribute("aria-sort"), "descending");

  await header("change").locator("button").click();
  const byChange = (await readPage(page)).rows.map((r) => r.texts[3]);
  assert.deepEqual(byChange, ["new", "+23.4%", "0.0%", "0.0%", "-1.4%", "-100.0%"]);

  await page.locator("body").focus();
  await page.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
  const reached = new Set();
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press("Tab");
    reached.add(
      await page.evaluate(() => {
        const el = document.activeElement;
        return el?.id || (el?.closest("th")?.dataset.key ? `sort:${el.closest("th").dataset.key}` : el?.className || el?.tagName);
      }),
    );
  }
  for (const id of ["token", "token-reveal", "token-forget", "week-end", "week-prev", "week-next", "week-today", "organization", "load"]) {
    assert.ok(reached.has(id), `Tab reaches #${id}: ${[...reached].join(", ")}`);
  }
  for (const key of ["action", "current", "previous", "change", "failures", "failureRate"]) {
    assert.ok(reached.has(`sort:${key}`), `Tab reaches the ${key} column's sort button`);
  }
  assert.deepEqual(page.problems, []);
});

test("errors are shown plainly: bad token, expired token, another organization, unavailable", async () => {
  await page.fill("#organization", "");
  await page.fill("#token", "not-a-token");
  await page.click("#load");
  assert.equal(await settled(page), "error");
  let error = await showError(page);
  assert.equal(error.code, "UNAUTHENTICATED");
  assert.match(error.title, /not accepted \(401 UNAUTHENTICATED\)/);
  assert.equal(error.rows, 0, "no stale numbers beside an error");
  assert.ok(error.heading);
  await page.screenshot({ path: join(ARTIFACTS, "dashboard-bad-token.png"), fullPage: true });

  const now = Math.floor(Date.now() / 1000);
  await page.fill("#token", jwt({ sub: "usr_expired", scope: "audit:read", iat: now - 7200, exp: now - 3600 }));
  await page.click("#load");
  assert.equal(await settled(page), "error");
  error = await showError(page);
  assert.equal(error.title, "The token has expired (401 UNAUTHENTICATED)");
  assert.match(error.detail, /token expired/, "the service's own words");
  assert.match(await page.locator("#token-info").textContent(), /expired/);

  await page.fill("#token", ORG_TOKEN);
  await page.fill("#organization", "org_globex");
  await page.click("#load");
  assert.equal(await settled(page), "error");
  error = await showError(page);
  assert.equal(error.code, "PERMISSION_DENIED");
  assert.equal(error.title, "This token may not read organization “org_globex” (403 PERMISSION_DENIED)");
  assert.match(error.detail, /confined to organization “org_acme”/);

  // The org-confined token without an organization reads its own.
  await page.fill("#organization", "");
  await page.click("#load");
  assert.equal(await settled(page), "loaded");
  assert.equal((await readPage(page)).scope, "the token's own (org_acme)");
  assert.ok(await page.locator("#error").isHidden(), "a success clears the error");

  const rpc = "**/avnology.audit.v1.AuditService/GetEventsSummary";
  // What the service sends when its database is down: HTTP 200 with status 14 in the trailer frame.
  const trailer = Buffer.from("grpc-status:14\r\ngrpc-message:database%20unavailable\r\n");
  const frame = Buffer.concat([Buffer.from([0x80, 0, 0, 0, 0]), trailer]);
  frame.writeUInt32BE(trailer.length, 1);
  await page.route(rpc, (route) => route.fulfill({ status: 200, contentType: "application/grpc-web+proto", body: frame }));
  await page.click("#load");
  assert.equal(await settled(page), "error");
  error = await showError(page);
  assert.equal(error.title, "The audit service is unavailable (503 UNAVAILABLE)");
  assert.match(error.detail, /database unavailable/);
  await page.screenshot({ path: join(ARTIFACTS, "dashboard-unavailable.png"), fullPage: true });
  await page.unroute(rpc);

  // A proxy in front of it answering 503, and no server at all.
  await page.route(rpc, (route) => route.fulfill({ status: 503, contentType: "text/plain", body: "no upstream" }));
  await page.click("#load");
  assert.equal(await settled(page), "error");
  assert.equal((await showError(page)).code, "UNAVAILABLE");
  await page.unroute(rpc);
  await page.route(rpc, (route) => route.abort("connectionrefused"));
  await page.click("#load");
  assert.equal(await settled(page), "error");
  error = await showError(page);
  assert.equal(error.title, "The audit service cannot be reached");
  await page.unroute(rpc);
  assert.deepEqual(page.problems, []);
});

test("the token lives only in this tab's session storage", async () => {
  await page.fill("#token", READ_TOKEN);
  const storage = await page.evaluate(() => ({
    session: Object.keys(sessionStorage),
    local: localStorage.length,
    cookies: document.cookie,
    url: location.href,
  }));
  assert.ok(storage.session.includes("audit-dashboard.token"));
  assert.equal(storage.local, 0);
  assert.equal(storage.cookies, "");
  assert.ok(!storage.url.includes(READ_TOKEN.slice(0, 20)));
  await page.reload();
  assert.equal(await page.locator("#token").inputValue(), READ_TOKEN, "kept across reloads of the tab");
  await settled(page);
  const other = await page.context().newPage();
  await other.goto(BASE);
  assert.equal(await other.locator("#token").inputValue(), "", "another tab does not get it");
  await other.close();
  await page.click("#token-forget");
  assert.deepEqual(await page.evaluate(() => Object.keys(sessionStorage)), []);
});

test("readable on a phone: no sideways scrolling of the page", async () => {
  await page.fill("#token", READ_TOKEN);
  await page.fill("#organization", "org_acme");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click("#load");
  assert.equal(await settled(page), "loaded");
  const widths = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  assert.ok(widths[0] <= widths[1], `page width ${widths[0]} fits the ${widths[1]}px screen`);
  await page.screenshot({ path: join(ARTIFACTS, "dashboard-phone.png"), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
});

test("demo mode pre-fills a short-lived read-only token and shows the last 7 days", async () => {
  const demo = await launch({ timezoneId: "Europe/Berlin" });
  await demo.goto(DEMO);
  assert.equal(await settled(demo), "loaded");
  const token = await demo.locator("#token").inputValue();
  assert.equal(token, (await (await fetch(`${DEMO}/demo-token`)).json()).token);
  const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
  assert.equal(claims.scope, "audit:read");
  assert.equal(claims.org_id, undefined);
  assert.ok(claims.exp - claims.iat <= 2 * 3600, "valid two hours at most");
  assert.match(await demo.locator("#token-info").textContent(), /^Demo token/);

  const shown = await readPage(demo);
  const [current, previous] = shown.ranges;
  const now = Date.now();
  assert.ok(Date.parse(current.start) <= now && now < Date.parse(current.end), "this week includes today");
  assert.ok(Math.abs(Date.parse(current.end) - Date.parse(current.start) - 7 * 86_400_000) <= 3_600_000);
  assert.equal(previous.end, current.start);
  assert.ok(shown.rows.length >= 10, "the demo's actions");
  assertPageShows(shown, await apiSummary(DEMO, current, "", token), await apiSummary(DEMO, previous, "", token), "demo");
  await demo.screenshot({ path: join(ARTIFACTS, "dashboard-demo.png"), fullPage: true });
  if (process.env.UPDATE_DOCS === "1") copyFileSync(join(ARTIFACTS, "dashboard-demo.png"), DOCS_SCREENSHOT);

  await demo.fill("#organization", "org_initech");
  await demo.click("#load");
  assert.equal(await settled(demo), "loaded");
  const initech = await readPage(demo);
  assert.ok(Number(initech.total.values[0]) < Number(shown.total.values[0]), "one organization has fewer events");

  // A token the viewer pasted is theirs: the demo's never replaces it.
  await demo.fill("#token", READ_TOKEN);
  await demo.reload();
  assert.equal(await demo.locator("#token").inputValue(), READ_TOKEN);
  assert.deepEqual(demo.problems, []);
});
