// What the browser tests share: the environment run-browser-test.sh sets, and headless Debian Chromium with a
// fresh profile per page, whose script errors and policy violations the tests collect and assert away.

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));

export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run web/run-browser-test.sh`);
  return value;
}

export const ARTIFACTS = resolve(process.env.ARTIFACTS ?? join(here, "..", "artifacts"));
export const DOCS_SCREENSHOT = resolve(here, "..", "..", "docs", "dashboard.png");
mkdirSync(ARTIFACTS, { recursive: true });

/** The flags this machine's Chromium needs to run headless in a container, with nothing phoning home. */
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const contexts = [];

/** A browser with its own fresh profile folder (the persistent-context API is how Playwright takes one). */
export async function launch(options) {
  const profile = mkdtempSync(join(tmpdir(), "audit-dashboard-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_FLAGS,
    locale: "en-US",
    viewport: { width: 1280, height: 800 },
    ...options,
  });
  contexts.push({ context, profile });
  const page = context.pages()[0] ?? (await context.newPage());
  // Script errors and policy violations fail the test; a failed request the page reports is expected.
  page.problems = [];
  page.on("pageerror", (error) => page.problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (/Content Security Policy|Trusted Type|Refused to/i.test(message.text())) page.problems.push(message.text());
  });
  return page;
}

after(async () => {
  for (const { context, profile } of contexts) {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
});

/** Waits until the newest request of the summary has rendered (numbers or an error). */
export async function settled(page) {
  await page.waitForFunction(
    () => {
      const state = document.getElementById("results")?.dataset.state;
      return state !== undefined && state !== "loading";
    },
    null,
    { timeout: 30_000 },
  );
  return page.locator("#results").getAttribute("data-state");
}
