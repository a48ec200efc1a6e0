// The front end's one build command (`npm run build`): generates the gRPC-web client from ../proto with buf,
// type-checks, bundles with esbuild into dist/, which the Rust binary embeds. `npm run check` builds into a
// temporary folder and fails when the committed dist/ differs, so CI catches a forgotten rebuild.

import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
const check = process.argv.includes("--check");
const banner = "/* Built by web/build.mjs from web/src; do not edit: run `npm run build` in web/. */";

function run(command, args) {
  const result = spawnSync(join(root, "node_modules", ".bin", command), args, { cwd: root, stdio: "inherit" });
  if (result.status !== 0) {
    console.error(`${command} ${args.join(" ")} failed`);
    process.exit(result.status ?? 1);
  }
}

async function build(out) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, "assets"), { recursive: true });
  // The client code is generated, not committed: the proto is its single source.
  run("buf", ["generate"]);
  run("tsc", ["--noEmit", "-p", "."]);
  const common = {
    bundle: true,
    minify: true,
    charset: "utf8",
    legalComments: "eof",
    // Browsers of the last years; bigint literals need ES2020.
    target: ["chrome111", "firefox115", "safari16.4"],
    logLevel: "warning",
    absWorkingDir: root,
  };
  await esbuild.build({
    ...common,
    entryPoints: ["src/main.ts"],
    outfile: join(out, "assets", "app.js"),
    format: "esm",
    banner: { js: banner },
  });
  await esbuild.build({
    ...common,
    entryPoints: ["src/app.css"],
    outfile: join(out, "assets", "app.css"),
    banner: { css: banner },
  });
  cpSync(join(root, "src", "index.html"), join(out, "index.html"));
  cpSync(join(root, "src", "favicon.svg"), join(out, "favicon.svg"));
}

function listFiles(folder, prefix = "") {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? listFiles(join(folder, entry.name), `${prefix}${entry.name}/`)
      : [`${prefix}${entry.name}`],
  );
}

if (check) {
  const fresh = mkdtempSync(join(tmpdir(), "audit-dashboard-"));
  try {
    await build(fresh);
    const expected = listFiles(fresh).sort();
    let committed = [];
    try {
      committed = listFiles(dist).sort();
    } catch {
      // No dist/ at all: every file below is reported missing.
    }
    const stale = [...new Set([...expected, ...committed])].filter((file) => {
      if (!expected.includes(file) || !committed.includes(file)) return true;
      return !readFileSync(join(fresh, file)).equals(readFileSync(join(dist, file)));
    });
    if (stale.length) {
      console.error(`web/dist is not what web/src builds to (${stale.join(", ")}):`);
      console.error("run `npm ci && npm run build` in web/ and commit web/dist.");
      process.exit(1);
    }
    console.log(`web/dist is fresh (${expected.length} files)`);
  } finally {
    rmSync(fresh, { recursive: true, force: true });
  }
} else {
  await build(dist);
  for (const file of listFiles(dist).sort()) {
    console.log(`dist/${file}  ${readFileSync(join(dist, file)).length} bytes`);
  }
}
