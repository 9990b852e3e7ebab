#!/usr/bin/env node
/**
 * Lattice test runner: one command (`npm test`, `deno task test`) that installs what is missing,
 * runs the static checks and runs the one test suite (`tests/**\/*.test.ts`, written with
 * `node:test` + `node:assert/strict`) on Deno, Bun and headless Chromium.
 *
 * Plain Node ESM (Node >= 20, no TypeScript) so it runs before anything else is installed.
 * Run `node scripts/test.mjs --help` for options. Output: a short header and outcome per stage,
 * failures with names and messages, one line per runtime (`deno: 12 passed, 0 failed (3.1 s)`),
 * and as the very last line `N passed, N failed` summed over the runtimes (a failing static
 * check or a failing stage counts as 1 failed). Exit code 0 only when everything passed.
 *
 * This file parses the flags and runs the stages in order; each stage lives in scripts/test/
 * (deps, checks and the check_* modules, deno, bun, browser with bundle/page_server/page_runner,
 * peer_fixture, summary).
 *
 * @module
 */

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { STAGES } from "./test/config.mjs";
import { bold, detail, log, red, setInterrupted, setVerbose } from "./test/output.mjs";
import { activeChildren, killGroup, tool } from "./test/process.mjs";
import { printSummary } from "./test/summary.mjs";
import { stageDeps } from "./test/deps.mjs";
import { findTestFiles, needsPeerFixture } from "./test/files.mjs";
import {
  ensureWebRtcInterface,
  removeWebRtcInterface,
  WEBRTC_HOST,
  WEBRTC_INTERFACE,
} from "./test/peer_fixture.mjs";
import { stageChecks } from "./test/checks.mjs";
import { stageDeno } from "./test/deno.mjs";
import { stageBun } from "./test/bun.mjs";
import { closeHandles, stageBrowser } from "./test/browser.mjs";

const HELP = `Usage: node scripts/test.mjs [options] [FILTER...]      (npm test, deno task test)

Runs, in order: dependency check (npm ci when node_modules is missing or stale), static checks
(import cycles, layers: core/ imports no storage/ net/ runtime/, World: only core/world.ts reads
clocks/timers/randomness, file size <= 500 lines; build-wasm and build-inspector --check, deno fmt
--check, deno lint, the @example blocks of the public API (deno test --doc), deno check, deno
publish --dry-run), then the test files tests/**/*.test.ts on Deno, Bun and headless Chromium (files tagged @server-only in
their first 5 lines are left out of the browser run). For files tagged @peer-fixture it first
creates a veth interface holding 10.213.77.1/32 for WebRTC-Direct (needs root; removed at the
end) and, in Chromium, runs a \`lattice serve\` node for the page to replicate with.

Options:
  --only STAGE     run only this stage: checks, deno, bun or browser (repeatable)
  -v, --verbose    stream the output of every tool as it runs
  -h, --help       show this help

FILTER           run only test files whose path contains FILTER (e.g. kernels, tests/net/);
                 with filters the static checks are skipped unless --only checks is given.

Environment:
  LATTICE_CHROMIUM        Chromium/Chrome binary (default /usr/bin/chromium, then PATH)
  LATTICE_TEST_TIMEOUT    per-test timeout in seconds on Bun and Chromium (default 300)
  LATTICE_STAGE_TIMEOUT   timeout of each test stage in seconds (default 1200)
  LATTICE_FILE_TIMEOUT    timeout of one test file in Chromium in seconds (default 600)
  LATTICE_CHECK_TIMEOUT   timeout of each static check in seconds (default 600)
  LATTICE_SKIP_DEPS=1     skip the dependency stage entirely (never runs npm ci): for worktrees
                          whose node_modules is a symlink to another checkout's

The last line is "N passed, N failed" over all runtimes; the exit code is 1 if anything failed
(a failing check or stage counts as one failure), 2 on a usage error.`;

// -------------------------------------------------------------------------------------------
// main
// -------------------------------------------------------------------------------------------

async function main() {
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      options: {
        only: { type: "string", multiple: true },
        verbose: { type: "boolean", short: "v" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
    });
  } catch (e) {
    process.stderr.write(`${e.message}\nRun with --help for usage.\n`);
    return 2;
  }
  if (parsed.values.help) {
    log(HELP);
    return 0;
  }
  setVerbose(!!parsed.values.verbose);
  const only = (parsed.values.only ?? []).flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean);
  const bad = only.filter((s) => !STAGES.includes(s));
  if (bad.length) {
    process.stderr.write(`Unknown stage ${bad.join(", ")}: --only takes ${STAGES.join(", ")}.\n`);
    return 2;
  }
  const filters = parsed.positionals;
  const stages = new Set(only.length ? only : filters.length ? STAGES.filter((s) => s !== "checks") : STAGES);
  const t0 = Date.now();
  const outcomes = [];
  const summarize = () => printSummary(outcomes, Date.now() - t0);

  const deps = process.env.LATTICE_SKIP_DEPS === "1"
    ? (log(`${bold("== deps")}: skipped (LATTICE_SKIP_DEPS=1)`), { ok: true })
    : await stageDeps();
  if (!deps.ok) {
    outcomes.push({ label: "deps", passed: 0, failed: 1, line: `deps: ${red("FAILED")} (${deps.why})` });
    return summarize();
  }
  const deno = tool("deno");
  const bun = tool("bun");

  const files = findTestFiles(filters);
  if (filters.length && !files.length) {
    process.stderr.write(`No test file matches ${filters.join(", ")}.\n`);
    return 2;
  }

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lattice-test-"));
  cleanup.tmp = tmp;
  const testStages = ["deno", "bun", "browser"].some((s) => stages.has(s));
  if (testStages && files.some(needsPeerFixture)) {
    const iface = ensureWebRtcInterface();
    if (iface.error) log(`${red("note")} ${iface.error}; the WebRTC-Direct tests will fail`);
    else if (iface.created) {
      cleanup.webrtcInterface = true;
      detail(`created ${WEBRTC_INTERFACE} with ${WEBRTC_HOST}/32 for the WebRTC-Direct tests`);
    }
  }
  try {
    const missing = (label, name) => {
      const line = `${label}: ${red("FAILED")} (${name} not found in node_modules/.bin; run npm ci)`;
      log(line);
      outcomes.push({ label, passed: 0, failed: 1, line });
    };
    let checksRan = false;
    if (stages.has("checks")) {
      if (!deno) missing("checks", "deno");
      else {
        outcomes.push(await stageChecks(deno, tmp));
        checksRan = true;
      }
    }
    if (stages.has("deno")) {
      if (!deno) missing("deno", "deno");
      else outcomes.push(await stageDeno(deno, files, tmp, { noCheck: checksRan }));
    }
    if (stages.has("bun")) {
      if (!bun) missing("bun", "bun");
      else outcomes.push(await stageBun(bun, files, tmp));
    }
    if (stages.has("browser")) outcomes.push(await stageBrowser(files, tmp, cleanup.handles, deno));
  } finally {
    await closeHandles(cleanup.handles);
    fs.rmSync(tmp, { recursive: true, force: true });
    cleanup.tmp = null;
    if (cleanup.webrtcInterface) removeWebRtcInterface();
    cleanup.webrtcInterface = false;
  }
  return summarize();
}

const cleanup = {
  tmp: null,
  handles: { browser: null, server: null, fixture: null },
  webrtcInterface: false,
};

function onSignal(signal) {
  log(`\n${signal}: stopping`);
  setInterrupted();
  for (const child of activeChildren) killGroup(child, "SIGKILL");
  const exit = () => {
    if (cleanup.tmp) fs.rmSync(cleanup.tmp, { recursive: true, force: true });
    if (cleanup.webrtcInterface) removeWebRtcInterface();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  closeHandles(cleanup.handles).finally(exit);
  setTimeout(exit, 5000).unref();
}
process.once("SIGINT", onSignal);
process.once("SIGTERM", onSignal);

// Exit explicitly once done: a handle left open by a tool must not keep the runner alive.
const exitWith = (code) => process.stdout.write("", () => process.exit(code));
main().then(exitWith, (e) => {
  process.stderr.write(`test runner crashed: ${e?.stack ?? e}\n`);
  log("0 passed, 1 failed");
  exitWith(1);
});
