// The browser test's known events, and what any correct summary of them must say. Run as a script it stores
// them in a running service over REST (`node seed.mjs BASE_URL WRITE_TOKEN`); imported, it gives the test
// the week it picks, the viewer's time zone, and the expected counts.

import { pathToFileURL } from "node:url";

/** A zone with a daylight-saving change inside the chosen week: that week is 167 hours long. */
export const TIME_ZONE = "America/New_York";
/** The last day of "this week" as the test picks it in the page. */
export const WEEK_LAST_DAY = "2025-03-15";
/** Local midnights in TIME_ZONE: Mar 9 and Mar 2 are EST (UTC-5), Mar 16 is EDT (UTC-4). */
export const WEEKS = {
  current: { start: "2025-03-09T05:00:00.000Z", end: "2025-03-16T04:00:00.000Z" },
  previous: { start: "2025-03-02T05:00:00.000Z", end: "2025-03-09T05:00:00.000Z" },
};

/** Per organization and week: action -> [events, of which failures]. */
export const PLAN = {
  org_acme: {
    current: { "session.login": [1234, 56], "oauth.token.issued": [789, 12], "user.created": [25, 0], "api_key.revoked": [3, 1] },
    previous: { "session.login": [1000, 40], "oauth.token.issued": [800, 8], "user.created": [25, 1], "user.deleted": [2, 0] },
  },
  org_globex: {
    current: { "session.login": [4321, 321], "user.password.changed": [17, 2], "report.exported": [123, 7] },
    previous: { "session.login": [5000, 100], "user.password.changed": [20, 0] },
  },
};

/**
 * The action the drill-down test opens: more events than one page of the dashboard's (50), with distinct
 * actors, targets, addresses and details, microsecond timestamps, and three events on each instant, so that
 * the page's order has to be the API's tie-break too.
 */
export const DRILL = { organization: "org_globex", action: "report.exported", span: "current" };

/** One event exactly at each week's start belongs to it; one a microsecond earlier to the week before. */
const BOUNDARY_ACTION = "boundary.check";

function expectedFor(org, week) {
  const counts = new Map(Object.entries(PLAN[org][week]).map(([action, [count, failures]]) => [action, { count, failures }]));
  if (org === "org_acme") {
    // At current.start (this week), and at current.start - 1µs (last week): one each.
    counts.set(BOUNDARY_ACTION, { count: 1, failures: 0 });
  }
  return counts;
}

/** What the summary must answer for `org` ("" = every organization) in `week` ("current" or "previous"). */
export function expected(org, week) {
  if (org) return expectedFor(org, week);
  const all = new Map();
  for (const name of Object.keys(PLAN)) {
    for (const [action, { count, failures }] of expectedFor(name, week)) {
      const sum = all.get(action) ?? { count: 0, failures: 0 };
      all.set(action, { count: sum.count + count, failures: sum.failures + failures });
    }
  }
  return all;
}

function event(id, org, action, failed, timestamp) {
  return {
    id,
    timestamp,
    organization_id: org,
    action,
    result: failed ? "failure" : "success",
    actor: { type: "identity", id: "usr_browser_test" },
    ip: "192.0.2.1",
  };
}

/** A drill-down event: `i` of `count`, spread over the week in threes sharing one instant. */
function drillEvent(org, week, action, i, count, failed) {
  const start = Date.parse(WEEKS[week].start);
  const span = Date.parse(WEEKS[week].end) - start;
  const at = new Date(start + Math.floor(((Math.floor(i / 3) + 0.5) * 3 * span) / (count + 3)));
  const micros = String(100 + (Math.floor(i / 3) % 900)).padStart(3, "0");
  return {
    ...event(`${org}-${week}-${action}-${i}`, org, action, failed, `${at.toISOString().slice(0, 23)}${micros}Z`),
    actor: { type: i % 4 === 0 ? "api_key" : "identity", id: `usr_${(i * 7) % 23}` },
    target: { type: "report", id: `rep_${i}` },
    ip: `198.51.100.${i % 250}`,
    user_agent: `report-runner/${i % 3}.0`,
    details: { format: i % 2 ? "csv" : "jsonl", rows: i * 10, filters: { region: "eu", tags: ["weekly", `n${i}`] }, note: 'quoted "text"' },
  };
}

export function events() {
  const all = [];
  for (const [org, weeks] of Object.entries(PLAN)) {
    for (const [week, actions] of Object.entries(weeks)) {
      const start = Date.parse(WEEKS[week].start);
      const span = Date.parse(WEEKS[week].end) - start;
      for (const [action, [count, failures]] of Object.entries(actions)) {
        for (let i = 0; i < count; i++) {
          if (org === DRILL.organization && action === DRILL.action) {
            all.push(drillEvent(org, week, action, i, count, i < failures));
            continue;
          }
          // Spread evenly, strictly inside the week, failures first.
          const at = new Date(start + Math.floor(((i + 0.5) * span) / count)).toISOString();
          all.push(event(`${org}-${week}-${action}-${i}`, org, action, i < failures, at));
        }
      }
    }
  }
  const start = Date.parse(WEEKS.current.start);
  const end = WEEKS.current.end;
  all.push(event("edge-at-start", "org_acme", BOUNDARY_ACTION, false, WEEKS.current.start));
  all.push(event("edge-before-start", "org_acme", BOUNDARY_ACTION, false, `${new Date(start - 1).toISOString().slice(0, 23)}999Z`));
  // Outside both weeks: at this week's exclusive end, and long before: no summary of the two weeks counts them.
  all.push(event("edge-at-end", "org_acme", "session.login", true, end));
  all.push(event("old-initech", "org_initech", "session.login", false, "2025-01-01T12:00:00Z"));
  return all;
}

/** Stores the events over REST, 1000 to a batch (the API's maximum). */
export async function seed(base, token) {
  const all = events();
  let created = 0;
  for (let i = 0; i < all.length; i += 1000) {
    const response = await fetch(`${base}/v1/audit/events:batchCreate`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ events: all.slice(i, i + 1000) }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(`batchCreate answered ${response.status}: ${JSON.stringify(body)}`);
    created += body.created_count + body.duplicate_count;
  }
  if (created !== all.length) throw new Error(`stored ${created} of ${all.length} events`);
  return created;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [base, token] = process.argv.slice(2);
  if (!base || !token) {
    console.error("usage: node seed.mjs BASE_URL WRITE_TOKEN");
    process.exit(2);
  }
  console.log(`seeded ${await seed(base, token)} events into ${base}`);
}
