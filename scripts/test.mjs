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
 * @module
 */

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Buffer } from "node:buffer";
import { SourceMap } from "node:module";
import { isForeignOptional, lockDrift, manifestDrift, onlyMissingOptionals } from "./_deps.mjs";
import { CHROMIUM_ARGS } from "./_chromium.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const BIN = path.join(ROOT, "node_modules", ".bin");
const BROWSER_DIR = path.join(ROOT, "tests", "_browser");
const STAGES = ["checks", "deno", "bun", "browser"];

const envNumber = (name, fallback) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const STAGE_TIMEOUT_MS = envNumber("LATTICE_STAGE_TIMEOUT", 1200) * 1000;
const CHECK_TIMEOUT_MS = envNumber("LATTICE_CHECK_TIMEOUT", 600) * 1000;
const TEST_TIMEOUT_MS = envNumber("LATTICE_TEST_TIMEOUT", 300) * 1000;
const NPM_TIMEOUT_MS = 900 * 1000;
const BROWSER_FILE_TIMEOUT_MS = envNumber("LATTICE_FILE_TIMEOUT", 600) * 1000;

const HELP = `Usage: node scripts/test.mjs [options] [FILTER...]      (npm test, deno task test)

Runs, in order: dependency check (npm ci when node_modules is missing or stale), static checks
(build-wasm and build-inspector --check, deno fmt --check, deno lint, deno check, deno publish --dry-run), then the
test files tests/**/*.test.ts on Deno, Bun and headless Chromium (files tagged @server-only in
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
// output
// -------------------------------------------------------------------------------------------

let VERBOSE = false;
const COLOR = !!process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code) => (s) => COLOR ? `\x1b[${code}m${s}\x1b[0m` : String(s);
const red = paint("31");
const green = paint("32");
const bold = paint("1");
const dim = paint("2");

let interrupted = false;

function log(line = "") {
  if (!interrupted) process.stdout.write(line + "\n");
}

/** Extra progress lines, only with --verbose. */
function detail(line) {
  if (VERBOSE) log(dim(`   ${line}`));
}

function header(title) {
  log(bold(`== ${title}`));
}

function secs(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Indents text, keeping at most `max` lines (the first ones, or the last ones with `tail`). */
function indent(text, { pad = "    ", max = 40, tail = false } = {}) {
  let lines = String(text).replace(/\s+$/, "").split("\n");
  let note = "";
  if (lines.length > max) {
    note = `${pad}${dim(`… ${lines.length - max} more lines`)}`;
    lines = tail ? lines.slice(-max) : lines.slice(0, max);
  }
  const body = lines.map((l) => pad + l).join("\n");
  if (!note) return body;
  return tail ? `${note}\n${body}` : `${body}\n${note}`;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// -------------------------------------------------------------------------------------------
// child processes
// -------------------------------------------------------------------------------------------

const activeChildren = new Set();

function killGroup(child, signal) {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Environment for the tools: no colours (output is parsed), no update checks, no telemetry. */
function toolEnv(extra = {}) {
  const env = { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", DO_NOT_TRACK: "1", ...extra };
  delete env.FORCE_COLOR;
  delete env.RUST_BACKTRACE;
  return env;
}

/**
 * Runs a command in its own process group, capturing stdout+stderr interleaved. On exit, and on
 * timeout, the whole group is killed so that nothing a test started outlives its stage.
 */
function runCommand(cmd, args, { timeoutMs = 0, env = toolEnv(), stream = VERBOSE } = {}) {
  return new Promise((resolve) => {
    const start = Date.now();
    const chunks = [];
    let size = 0;
    const LIMIT = 8 << 20;
    let settled = false;
    let timedOut = false;
    let spawnError = null;
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    activeChildren.add(child);
    const collect = (target) => (buf) => {
      chunks.push(buf);
      size += buf.length;
      while (size > LIMIT && chunks.length > 1) size -= chunks.shift().length;
      if (stream) target.write(buf);
    };
    child.stdout.on("data", collect(process.stdout));
    child.stderr.on("data", collect(process.stderr));
    const timer = timeoutMs > 0
      ? setTimeout(() => {
        timedOut = true;
        killGroup(child, "SIGTERM");
        setTimeout(() => killGroup(child, "SIGKILL"), 5000).unref();
      }, timeoutMs)
      : null;
    let exitCode = null;
    let exitSignal = null;
    let exitTimer = null;
    const finish = () => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      if (exitTimer) clearTimeout(exitTimer);
      child.stdout.destroy();
      child.stderr.destroy();
      activeChildren.delete(child);
      resolve({
        code: exitCode,
        signal: exitSignal,
        timedOut,
        error: spawnError,
        out: Buffer.concat(chunks).toString("utf8"),
        ms: Date.now() - start,
      });
    };
    child.on("error", (err) => {
      spawnError = err;
      finish();
    });
    child.on("exit", (code, signal) => {
      exitCode = code;
      exitSignal = signal;
      // Reap whatever the tool left behind in its group (servers a test forgot to stop, …).
      killGroup(child, "SIGKILL");
      // Output pipes normally close right away; don't hang if something escaped the group.
      exitTimer = setTimeout(finish, 3000);
    });
    child.on("close", finish);
  });
}

function describeExit(r) {
  if (r.error) return `could not start: ${r.error.message}`;
  if (r.timedOut) return `timed out after ${secs(r.ms)}`;
  if (r.signal) return `killed by ${r.signal}`;
  return `exit code ${r.code}`;
}

// -------------------------------------------------------------------------------------------
// stage: dependencies
// -------------------------------------------------------------------------------------------

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return null;
  }
}

/** This machine as npm sees it when it picks optional packages. */
function thisPlatform() {
  let libc = "glibc";
  try {
    if (process.platform === "linux" && !process.report?.getReport()?.header?.glibcVersionRuntime) {
      libc = "musl";
    }
  } catch {
    // no report: assume glibc, as npm does
  }
  return { os: process.platform, arch: process.arch, libc };
}

/** Why node_modules must be (re)installed, or null when it matches package-lock.json. */
function depsProblem() {
  const lockFile = path.join(ROOT, "package-lock.json");
  const hiddenFile = path.join(ROOT, "node_modules", ".package-lock.json");
  if (!fs.existsSync(path.join(ROOT, "node_modules"))) return "node_modules is missing";
  if (!fs.existsSync(hiddenFile)) return "node_modules/.package-lock.json is missing";
  const lock = readJson(lockFile);
  const hidden = readJson(hiddenFile);
  if (!lock?.packages) return "package-lock.json is missing or unreadable";
  if (!hidden?.packages) return "node_modules/.package-lock.json is unreadable";
  // The hidden lockfile lists what is installed; package-lock.json also lists other platforms'
  // optional packages. Compare contents: a merely older mtime (git checkout) is not a reason.
  const platform = thisPlatform();
  for (const [key, want] of Object.entries(lock.packages)) {
    if (key === "" || !key.startsWith("node_modules/")) continue;
    const have = hidden.packages[key];
    if (!have) {
      if (isForeignOptional(want, platform)) continue;
      return `${key.slice(13)} ${want.version} is not installed`;
    }
    if (have.version !== want.version) {
      return `${key.slice(13)} is ${have.version}, package-lock.json wants ${want.version}`;
    }
  }
  for (const key of Object.keys(hidden.packages)) {
    if (!lock.packages[key]) return `${key.slice(13)} is installed but not in package-lock.json`;
  }
  return null;
}

/** The npm error lines of a failed npm run (its usage text and warnings left out). */
function npmErrors(out) {
  const lines = out.split("\n").filter((l) => l.startsWith("npm error") && !/^npm error\s*$/.test(l));
  const usage = lines.findIndex((l) => /^npm error (Clean install a project|Usage:)/.test(l));
  return (usage > 0 ? lines.slice(0, usage) : lines).join("\n") || lastLines(out, 30);
}

/**
 * Installs node_modules from package-lock.json. A package.json that differs from the lockfile is a
 * real drift and fails at once. `npm ci` refuses a lockfile that lacks optional packages the
 * registry has gained for other platforms; only then does this fall back to `npm install`, accept
 * what it wrote to the lockfile when the difference is only such packages (scripts/_deps.mjs), and
 * put the committed lockfile back. Anything else it changed means the lockfile is stale: fail.
 */
async function stageDeps() {
  const lockFile = path.join(ROOT, "package-lock.json");
  const lockText = fs.existsSync(lockFile) ? fs.readFileSync(lockFile, "utf8") : null;
  const lock = lockText ? JSON.parse(lockText) : null;
  const drift = lock ? manifestDrift(readJson(path.join(ROOT, "package.json")) ?? {}, lock) : [];
  if (drift.length) {
    log(
      `${
        red("FAIL")
      } package.json and package-lock.json disagree: run \`npm install\` and commit package-lock.json`,
    );
    log(indent(drift.join("\n"), { max: 20 }));
    return { ok: false, why: "package-lock.json is stale" };
  }
  const problem = depsProblem();
  if (!problem) {
    log(`${bold("== deps")}: node_modules matches package-lock.json`);
    return { ok: true };
  }
  header(`deps: ${problem}; running npm ci`);
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const env = { ...process.env, NPM_CONFIG_UPDATE_NOTIFIER: "false" };
  const opts = { timeoutMs: NPM_TIMEOUT_MS, env };
  const r = await runCommand(npm, ["ci", "--no-audit", "--no-fund"], opts);
  if (r.code === 0) {
    log(`deps: npm ci ok (${secs(r.ms)})`);
    return { ok: true };
  }
  if (!lock || !onlyMissingOptionals(r.out, lock)) {
    log(`${red("FAIL")} npm ci (${describeExit(r)}, ${secs(r.ms)})`);
    log(indent(npmErrors(r.out), { max: 40 }));
    return { ok: false, why: "npm ci failed" };
  }
  log("   npm ci refused package-lock.json for optional packages the registry has gained; using npm install");
  const r2 = await runCommand(npm, ["install", "--no-audit", "--no-fund"], opts);
  const afterText = fs.existsSync(lockFile) ? fs.readFileSync(lockFile, "utf8") : "{}";
  if (afterText !== lockText) fs.writeFileSync(lockFile, lockText);
  if (r2.code !== 0) {
    log(`${red("FAIL")} npm install (${describeExit(r2)}, ${secs(r2.ms)})`);
    log(indent(npmErrors(r2.out), { max: 40 }));
    return { ok: false, why: "npm install failed" };
  }
  const changed = lockDrift(lock, JSON.parse(afterText), thisPlatform());
  if (changed.length) {
    log(`${red("FAIL")} package-lock.json is out of date: run \`npm install\` and commit it`);
    log(indent(changed.join("\n"), { max: 20 }));
    return { ok: false, why: "package-lock.json is stale" };
  }
  log(
    `deps: npm install ok; it differed from package-lock.json only in other platforms' optional packages (${
      secs(r.ms + r2.ms)
    })`,
  );
  return { ok: true };
}

function tool(name) {
  const local = path.join(BIN, name);
  if (fs.existsSync(local)) return local;
  const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  return found.status === 0 ? found.stdout.trim() : null;
}

// -------------------------------------------------------------------------------------------
// test files
// -------------------------------------------------------------------------------------------

function walk(dir, out = []) {
  let entries = [];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name === "node_modules" || e.name.startsWith(".")) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}

const rel = (abs) => path.relative(ROOT, abs).split(path.sep).join("/");

function findTestFiles(filters) {
  const all = walk(path.join(ROOT, "tests")).filter((f) => f.endsWith(".test.ts")).map(rel).sort();
  if (!filters.length) return all;
  const wanted = filters.map((f) => {
    const abs = path.resolve(f);
    const asRel = fs.existsSync(abs) ? rel(abs) : f.replace(/^\.\//, "");
    return asRel;
  });
  return all.filter((f) => wanted.some((w) => f.includes(w)));
}

function hasTag(file, tag) {
  const head = fs.readFileSync(path.join(ROOT, file), "utf8").split("\n", 5).join("\n");
  return head.includes(tag);
}

function isServerOnly(file) {
  return hasTag(file, "@server-only");
}

/** Files that replicate with a `lattice serve` node: see tests/_peer_fixture.ts. */
function needsPeerFixture(file) {
  return hasTag(file, "@peer-fixture");
}

// -------------------------------------------------------------------------------------------
// peer fixture: the WebRTC-Direct interface and, for Chromium, a `lattice serve` node
// -------------------------------------------------------------------------------------------

// Keep in step with tests/_peer_fixture.ts (WEBRTC_INTERFACE, WEBRTC_HOST).
const WEBRTC_INTERFACE = "lattice-wrtc0";
const WEBRTC_PEER_END = "lattice-wrtc1";
const WEBRTC_HOST = "10.213.77.1";

function hasAddress(ip) {
  return Object.values(os.networkInterfaces()).some((list) => list?.some((a) => a.address === ip));
}

/**
 * WebRTC skips loopback, so WebRTC-Direct tests need an address on a real interface. This creates
 * a veth pair whose one end holds WEBRTC_HOST/32: the address is local (packets to it never leave
 * the machine), there is no route to anything else, and IPv6 is off on both ends so the kernel
 * sends nothing on them by itself. Needs root (CI runs as root). Returns { created } or { error }.
 */
function ensureWebRtcInterface() {
  if (hasAddress(WEBRTC_HOST)) return { created: false };
  const steps = [
    ["ip", "link", "add", WEBRTC_INTERFACE, "type", "veth", "peer", "name", WEBRTC_PEER_END],
    ["ipv6-off", WEBRTC_INTERFACE],
    ["ipv6-off", WEBRTC_PEER_END],
    ["ip", "addr", "add", `${WEBRTC_HOST}/32`, "dev", WEBRTC_INTERFACE],
    ["ip", "link", "set", WEBRTC_INTERFACE, "up"],
    ["ip", "link", "set", WEBRTC_PEER_END, "up"],
  ];
  for (const [cmd, ...args] of steps) {
    if (cmd === "ipv6-off") {
      const knob = `/proc/sys/net/ipv6/conf/${args[0]}/disable_ipv6`;
      if (fs.existsSync(knob)) fs.writeFileSync(knob, "1"); // absent when the kernel has no IPv6
      continue;
    }
    const r = spawnSync(cmd, args, { encoding: "utf8" });
    if (r.status !== 0) {
      const why = (r.error?.message ?? r.stderr ?? "").trim() || `exit code ${r.status}`;
      removeWebRtcInterface();
      return {
        error: `could not create the WebRTC-Direct test interface (\`${cmd} ${args.join(" ")}\`: ${why}); ` +
          "WebRTC skips loopback, so these tests need it: run the tests as root (as CI does)",
      };
    }
  }
  return { created: true };
}

function removeWebRtcInterface() {
  spawnSync("ip", ["link", "del", WEBRTC_INTERFACE], { stdio: "ignore" });
}

/**
 * Starts `deno run -A tests/_peer_fixture.ts`, which runs `cli.ts serve` as a child and prints its
 * ready line as JSON. Resolves with { child, ready } or { child, error }.
 */
function startPeerFixture(deno, pageOrigin) {
  const child = spawn(deno, ["run", "-A", "tests/_peer_fixture.ts"], {
    cwd: ROOT,
    // The page calls the node's HTTP API from its own origin: the node grants it CORS.
    env: toolEnv({ LATTICE_TEST_PAGE_ORIGIN: pageOrigin }),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  activeChildren.add(child);
  let out = "", err = "";
  child.stderr.setEncoding("utf8").on("data", (s) => err += s);
  return new Promise((resolve) => {
    const timer = setTimeout(() => done({ error: `no ready line after 60 s; stderr: ${err}` }), 60_000);
    const done = (result) => {
      clearTimeout(timer);
      resolve({ child, ...result });
    };
    child.on("error", (e) => done({ error: `could not start deno: ${e.message}` }));
    child.on(
      "exit",
      (code) => done({ error: `the fixture exited (${code}) before it was ready; stderr: ${err}` }),
    );
    child.stdout.setEncoding("utf8").on("data", (s) => {
      out += s;
      const nl = out.indexOf("\n");
      if (nl < 0) return;
      try {
        const ready = JSON.parse(out.slice(0, nl));
        done(ready.error ? { error: ready.error } : { ready });
      } catch {
        done({ error: `unreadable ready line ${JSON.stringify(out.slice(0, nl))}` });
      }
    });
  });
}

/** Stops the fixture (SIGTERM, then SIGKILL after 10 s); resolves with its exit code. */
function stopPeerFixture(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      activeChildren.delete(child);
      return resolve(child.exitCode);
    }
    const timer = setTimeout(() => killGroup(child, "SIGKILL"), 10_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      killGroup(child, "SIGKILL");
      activeChildren.delete(child);
      resolve(code);
    });
    child.kill("SIGTERM");
  });
}

// -------------------------------------------------------------------------------------------
// JUnit parsing
// -------------------------------------------------------------------------------------------

function unescapeXml(s) {
  return s.replace(/&(#x[0-9a-f]+|#\d+|lt|gt|amp|quot|apos);/gi, (_, e) => {
    if (e[0] === "#") {
      return String.fromCodePoint(e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : +e.slice(1));
    }
    return { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" }[e.toLowerCase()];
  });
}

function attrs(s) {
  const out = {};
  for (const m of s.matchAll(/([\w:.-]+)="([^"]*)"/g)) out[m[1]] = unescapeXml(m[2]);
  return out;
}

/**
 * Test cases of a JUnit file, in document order, each with the names of the <testsuite>s that
 * enclose it (Bun nests describe blocks as testsuites; Deno writes flat suites).
 */
function parseJUnit(xml) {
  const cases = [];
  const suites = [];
  const re =
    /<testsuite\b((?:\s+[\w:.-]+="[^"]*")*)\s*(\/?)>|<\/testsuite>|<testcase\b((?:\s+[\w:.-]+="[^"]*")*)\s*(?:\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    if (m[0].startsWith("</testsuite")) suites.pop();
    else if (m[0].startsWith("<testsuite")) {
      if (!m[2]) suites.push(attrs(m[1]));
    } else {
      const a = attrs(m[3]);
      const body = m[4] ?? "";
      const fail = body.match(/<(failure|error)\b((?:\s+[\w:.-]+="[^"]*")*)\s*(?:\/>|>([\s\S]*?)<\/\1>)/);
      const failure = fail
        ? { message: attrs(fail[2]).message ?? "", text: unescapeXml(fail[3] ?? "").trim() }
        : null;
      cases.push({
        name: a.name ?? "",
        classname: a.classname ?? "",
        file: a.file ?? "",
        suites: suites.map((s) => s.name ?? ""),
        failure,
        skipped: /<skipped\b/.test(body),
      });
    }
  }
  return cases;
}

/** Counts of one runtime's results plus the failures to print. */
function newTally(label) {
  return { label, passed: 0, failed: 0, skipped: 0, ms: 0, failures: [], notes: [] };
}

/**
 * Deno reports describe blocks, it/test callbacks and t.test subtests all as test cases with
 * full names "a > b > c". To count like Bun and the browser (one per it/test callback), leave
 * out t.test subtests (steps whose classname is the test file: describe/it steps are registered
 * from Deno's internal ext:deno_node/testing.ts) and count only leaves.
 */
function tallyDeno(cases, tally) {
  const isSubtest = (c) => c.name.includes(" > ") && !c.classname.startsWith("ext:");
  const subtests = cases.filter(isSubtest);
  const kept = cases.filter((c) => !isSubtest(c));
  const parents = new Set();
  for (const c of kept) {
    const parts = c.name.split(" > ");
    for (let i = 1; i < parts.length; i++) parents.add(parts.slice(0, i).join(" > "));
  }
  const stepsFailed = /^\d+ test steps? failed/;
  // Steps carry no file name; take it from the top-level test they belong to.
  const fileOf = new Map();
  for (const c of kept) {
    if (!c.name.includes(" > ") && !c.classname.startsWith("ext:") && !fileOf.has(c.name)) {
      fileOf.set(c.name, c.classname.replace(/^\.\//, ""));
    }
  }
  for (const c of kept) {
    const isLeaf = !parents.has(c.name);
    if (!isLeaf) {
      // A container failing for its own reason (a hook) rather than because a child failed.
      if (c.failure && !stepsFailed.test(c.failure.message)) {
        tally.failed++;
        tally.failures.push({
          name: `${c.name} (hook or describe callback)`,
          message: c.failure.text || c.failure.message,
          file: fileOf.get(c.name.split(" > ")[0]) ?? "",
        });
      }
      continue;
    }
    if (c.skipped) tally.skipped++;
    else if (c.failure) {
      tally.failed++;
      let message = c.failure.text || c.failure.message;
      if (stepsFailed.test(c.failure.message)) {
        const subs = subtests.filter((s) =>
          s.failure && s.name.startsWith(c.name + " > ") && !stepsFailed.test(s.failure.message)
        );
        if (subs.length) {
          message = subs.map((s) => `subtest "${s.name}": ${s.failure.text || s.failure.message}`).join("\n");
        }
      }
      tally.failures.push({ name: c.name, message, file: fileOf.get(c.name.split(" > ")[0]) ?? "" });
    } else tally.passed++;
  }
}

/** Bun reports one test case per it/test callback (t.test subtests are not reported). */
function tallyBun(cases, tally) {
  for (const c of cases) {
    if (c.skipped) tally.skipped++;
    else if (c.failure) {
      tally.failed++;
      const name = [...c.suites.slice(1), c.name].join(" > ");
      tally.failures.push({ name, file: c.file, message: c.failure.text || c.failure.message });
    } else tally.passed++;
  }
}

/** Deno: errors outside any test ("./x.test.ts (uncaught error)") are not in the JUnit file. */
function denoUncaught(out) {
  const errors = [];
  const i = out.lastIndexOf("\n ERRORS \n");
  const j = out.lastIndexOf("\n FAILURES \n");
  if (j < 0) return errors;
  const failuresBlock = out.slice(j).split("\n");
  for (const line of failuresBlock) {
    const m = line.match(/^(\S.*) \(uncaught error\)$/);
    if (!m) continue;
    let message = "";
    if (i >= 0) {
      const errs = out.slice(i, j);
      const k = errs.indexOf(`${m[1]} (uncaught error)`);
      if (k >= 0) {
        message =
          errs.slice(k).split("\n").slice(1).join("\n").split(/\n\n(?=\S.* \(uncaught error\)|\S.* => )/)[0];
      }
    }
    errors.push({ name: `${m[1]} (uncaught error)`, message: message.trim() });
  }
  return errors;
}

/** Bun: "# Unhandled error between tests" blocks (module load errors, hook failures). */
function bunBetweenTests(out) {
  const errors = [];
  const lines = out.split("\n");
  let file = "";
  for (let i = 0; i < lines.length; i++) {
    const fm = lines[i].match(/^(\S.*\.test\.[cm]?[jt]sx?):$/);
    if (fm) file = fm[1];
    if (lines[i].trim() !== "# Unhandled error between tests") continue;
    const body = [];
    let j = i + 2;
    for (; j < lines.length && !/^-{10,}$/.test(lines[j].trim()); j++) body.push(lines[j]);
    errors.push({ name: `${file || "?"} (error between tests)`, message: body.join("\n") });
    i = j;
  }
  return errors;
}

/** Applies the exit status: a failing tool is a failure even if its report looks clean. */
function applyExit(tally, r, hasReport) {
  if (r.timedOut) {
    tally.failed++;
    tally.failures.push({
      name: `${tally.label} timed out after ${secs(r.ms)}`,
      message: lastLines(r.out, 30),
    });
  } else if (r.error || r.code !== 0) {
    if (tally.failed === 0) {
      tally.failed++;
      tally.failures.push({
        name: `${tally.label} failed (${describeExit(r)})${
          hasReport ? "" : " without writing its JUnit report"
        }`,
        message: lastLines(r.out, 40),
      });
    }
  } else if (!hasReport) {
    tally.failed++;
    tally.failures.push({ name: `${tally.label} wrote no JUnit report`, message: lastLines(r.out, 30) });
  }
}

function lastLines(text, n) {
  const lines = String(text).replace(/\s+$/, "").split("\n");
  return lines.slice(-n).join("\n");
}

function printFailures(tally) {
  const MAX = 50;
  const real = tally.failures.filter((f) => !f.note).length;
  for (const f of tally.failures.slice(0, MAX)) {
    const where = f.file ? `${f.file} > ` : "";
    log(f.note ? `  ${dim("note")} ${where}${f.name}` : `  ${red("FAIL")} ${where}${f.name}`);
    if (f.message) log(indent(f.message, { pad: "       ", max: 25 }));
  }
  if (tally.failures.length > MAX) log(`  … ${real} failures in all, the first ${MAX} entries shown`);
}

function runtimeLine(t) {
  const skipped = t.skipped ? `, ${t.skipped} skipped` : "";
  const notes = t.notes.length ? ` — ${t.notes.join("; ")}` : "";
  const failed = t.failed ? red(`${t.failed} failed`) : "0 failed";
  return `${t.label}: ${t.passed} passed, ${failed}${skipped} (${secs(t.ms)})${notes}`;
}

// -------------------------------------------------------------------------------------------
// stage: static checks
// -------------------------------------------------------------------------------------------

function hasTs(dir) {
  return walk(path.join(ROOT, dir)).some((f) => /\.tsx?$/.test(f));
}

/** `deno fmt --check` prints whole diffs; name the files first (the first diffs follow). */
function fmtSummary(out) {
  const files = [...out.matchAll(/^from (.+):$/gm)].map((m) => rel(m[1]));
  if (!files.length) return out;
  const more = files.length > 20 ? `\n  … and ${files.length - 20} more` : "";
  const diffs = out.slice(out.indexOf("\nfrom ") + 1).split("\n").slice(0, 30).join("\n");
  return `not formatted (run \`deno fmt\`):\n  ${files.slice(0, 20).join("\n  ")}${more}\n\n${diffs}`;
}

async function stageChecks(deno) {
  header("checks");
  const started = Date.now();
  const steps = [];
  const laneA = [];
  const laneB = [];
  if (fs.existsSync(path.join(ROOT, "scripts", "build-wasm.mjs"))) {
    laneA.push({
      name: "build-wasm --check",
      cmd: process.execPath,
      args: ["scripts/build-wasm.mjs", "--check"],
    });
  }
  laneA.push({
    name: "build-inspector --check",
    cmd: process.execPath,
    args: ["scripts/build-inspector.mjs", "--check"],
  });
  laneA.push({ name: "deno fmt --check", cmd: deno, args: ["fmt", "--check"], summarize: fmtSummary });
  laneA.push({ name: "deno lint", cmd: deno, args: ["lint"] });
  // The published entry points (deno.json "exports") are checked even outside these folders.
  const exportsField = readJson(path.join(ROOT, "deno.json"))?.exports ?? {};
  const exported = (typeof exportsField === "string" ? [exportsField] : Object.values(exportsField))
    .filter((f) => typeof f === "string" && /\.tsx?$/.test(f))
    .map((f) => f.replace(/^\.\//, ""));
  const targets = [
    ...new Set([...["mod.ts", "cli.ts"], ...exported].filter((f) => fs.existsSync(path.join(ROOT, f)))),
    ...["core", "storage", "net", "runtime", "tests", "bench"].filter(hasTs).map((d) => `${d}/`),
    ...(fs.existsSync(path.join(ROOT, "scripts"))
      ? fs.readdirSync(path.join(ROOT, "scripts")).filter((f) => f.endsWith(".ts")).map((f) => `scripts/${f}`)
      : []),
  ];
  if (targets.length) laneB.push({ name: "deno check", cmd: deno, args: ["check", ...targets] });
  // deno check above already type-checks the published modules; publish still checks slow types.
  laneB.push({
    name: "deno publish --dry-run",
    cmd: deno,
    args: ["publish", "--dry-run", "--allow-dirty", ...(targets.length ? ["--no-check"] : [])],
  });
  steps.push(...laneA, ...laneB);
  const runLane = async (lane) => {
    for (const s of lane) s.result = await runCommand(s.cmd, s.args, { timeoutMs: CHECK_TIMEOUT_MS });
  };
  await Promise.all([runLane(laneA), runLane(laneB)]);
  const failed = [];
  for (const s of steps) {
    const r = s.result;
    if (r.code === 0 && !r.error && !r.timedOut) {
      log(`  ${green("ok")}   ${s.name} ${dim(`(${secs(r.ms)})`)}`);
    } else {
      failed.push(s.name);
      log(`  ${red("FAIL")} ${s.name} (${describeExit(r)}, ${secs(r.ms)})`);
      log(indent(s.summarize ? s.summarize(r.out) : r.out, { pad: "       ", max: 60 }));
    }
  }
  const ms = Date.now() - started;
  const summary = failed.length
    ? `checks: ${red(`${failed.length} of ${steps.length} failed`)} (${failed.join(", ")}) (${secs(ms)})`
    : `checks: ok, ${plural(steps.length, "check")} (${secs(ms)})`;
  log(summary);
  return { label: "checks", failed: failed.length, passed: 0, line: summary, ms };
}

// -------------------------------------------------------------------------------------------
// stages: deno, bun
// -------------------------------------------------------------------------------------------

async function stageDeno(deno, files, tmp, { noCheck }) {
  header(`deno test: ${plural(files.length, "file")}`);
  const tally = newTally("deno");
  if (!files.length) return finishStage(tally, 0);
  const xml = path.join(tmp, "deno.xml");
  const args = ["test", "-A", ...(noCheck ? ["--no-check"] : []), `--junit-path=${xml}`, ...files];
  const r = await runCommand(deno, args, { timeoutMs: STAGE_TIMEOUT_MS });
  const hasReport = fs.existsSync(xml);
  if (hasReport) tallyDeno(parseJUnit(fs.readFileSync(xml, "utf8")), tally);
  for (const e of denoUncaught(r.out)) {
    tally.failed++;
    tally.failures.push(e);
  }
  applyExit(tally, r, hasReport);
  return finishStage(tally, r.ms);
}

async function stageBun(bun, files, tmp) {
  header(`bun test: ${plural(files.length, "file")}`);
  const tally = newTally("bun");
  if (!files.length) return finishStage(tally, 0);
  const xml = path.join(tmp, "bun.xml");
  const args = [
    "test",
    "--reporter=junit",
    `--reporter-outfile=${xml}`,
    `--timeout=${TEST_TIMEOUT_MS}`,
    ...files.map((f) => `./${f}`),
  ];
  const r = await runCommand(bun, args, { timeoutMs: STAGE_TIMEOUT_MS });
  const hasReport = fs.existsSync(xml);
  if (hasReport) tallyBun(parseJUnit(fs.readFileSync(xml, "utf8")), tally);
  for (const e of bunBetweenTests(r.out)) {
    tally.failed++;
    tally.failures.push(e);
  }
  applyExit(tally, r, hasReport);
  return finishStage(tally, r.ms);
}

function finishStage(tally, ms) {
  tally.ms = ms;
  printFailures(tally);
  tally.line = runtimeLine(tally);
  log(tally.line);
  return tally;
}

// -------------------------------------------------------------------------------------------
// stage: browser
// -------------------------------------------------------------------------------------------

const INSTALL_HINT =
  "install it with `apt-get update && apt-get install -y chromium` or set LATTICE_CHROMIUM " +
  "to a Chromium binary";

function findChromium() {
  const fromEnv = process.env.LATTICE_CHROMIUM;
  if (fromEnv) {
    return fs.existsSync(fromEnv)
      ? { exe: fromEnv }
      : { error: `LATTICE_CHROMIUM=${fromEnv} does not exist: ${INSTALL_HINT}.` };
  }
  if (fs.existsSync("/usr/bin/chromium")) return { exe: "/usr/bin/chromium" };
  for (const name of ["chromium", "chromium-browser"]) {
    const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
    if (r.status === 0 && r.stdout.trim()) return { exe: r.stdout.trim() };
  }
  return {
    error: `No Chromium found (looked at LATTICE_CHROMIUM, /usr/bin/chromium and PATH): ${INSTALL_HINT}.`,
  };
}

const SHIMS = {
  "node:test": path.join(BROWSER_DIR, "node_test.ts"),
  "node:assert/strict": path.join(BROWSER_DIR, "assert.ts"),
  "node:assert": path.join(BROWSER_DIR, "assert_legacy.ts"),
};

/** esbuild plugin: node:test/node:assert* → shims; other node:/bun: imports stay external. */
const shimPlugin = {
  name: "lattice-browser-shims",
  setup(build) {
    build.onResolve({ filter: /^(node|bun):/ }, (args) => {
      if (SHIMS[args.path]) return { path: SHIMS[args.path] };
      return { path: args.path, external: true };
    });
  },
};

async function bundle(esbuild, file, outfile) {
  let result;
  try {
    result = await esbuild.build({
      entryPoints: [path.join(ROOT, file)],
      outfile,
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      logLevel: "silent",
      plugins: [shimPlugin],
      absWorkingDir: ROOT,
      sourcemap: "external",
      metafile: true,
    });
  } catch (e) {
    const errors = e?.errors?.length
      ? e.errors.map((x) => (x.location ? `${x.location.file}:${x.location.line}: ${x.text}` : x.text))
      : [String(e?.message ?? e)];
    return errors.join("\n");
  }
  // A static import of a server module (node:fs, bun:sqlite, …) can never load in a browser.
  const staticServerImports = [];
  for (const [input, info] of Object.entries(result.metafile?.inputs ?? {})) {
    for (const imp of info.imports ?? []) {
      if (imp.external && imp.kind === "import-statement" && /^(node|bun):/.test(imp.path)) {
        staticServerImports.push(`${input} imports ${imp.path}`);
      }
    }
  }
  if (staticServerImports.length) {
    return [
      ...staticServerImports.slice(0, 5),
      ...(staticServerImports.length > 5 ? [`… and ${staticServerImports.length - 5} more`] : []),
      "Browsers have no such modules: tag the test file `// @server-only: <reason>` in its first 5 lines, " +
      "or load server modules with a dynamic import() behind feature detection.",
    ].join("\n");
  }
  return null;
}

function startServer(bundleDir) {
  const indexHtml = path.join(BROWSER_DIR, "index.html");
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const headers = {
      "Cache-Control": "no-store",
      // Cross-origin isolation: SharedArrayBuffer and the OPFS sqlite VFS need it.
      "Cross-Origin-Opener-Policy": "same-origin",
      "Cross-Origin-Embedder-Policy": "require-corp",
    };
    let file = null;
    let type = "";
    if (url.pathname === "/" || url.pathname === "/index.html") {
      file = indexHtml;
      type = "text/html; charset=utf-8";
    } else {
      const m = url.pathname.match(/^\/bundles\/([\w.-]+\.js)$/);
      if (m) {
        file = path.join(bundleDir, m[1]);
        type = "text/javascript; charset=utf-8";
      }
    }
    if (url.pathname === "/favicon.ico") {
      res.writeHead(204, headers).end();
      return;
    }
    if (!file || !fs.existsSync(file)) {
      res.writeHead(404, { ...headers, "Content-Type": "text/plain" }).end("not found");
      return;
    }
    res.writeHead(200, { ...headers, "Content-Type": type });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(
      0,
      "127.0.0.1",
      () => resolve({ server, url: `http://127.0.0.1:${server.address().port}` }),
    );
  });
}

function timeout(ms, value) {
  let timer;
  const p = new Promise((resolve) => {
    timer = setTimeout(() => resolve(value), ms);
    timer.unref?.();
  });
  p.cancel = () => clearTimeout(timer);
  return p;
}

const TIMED_OUT = Symbol("timed out");

/** Maps bundle positions in browser stack traces back to source files; drops shim frames. */
function stackMapper(bundleDir) {
  const maps = new Map();
  const load = (name) => {
    if (!maps.has(name)) {
      try {
        maps.set(
          name,
          new SourceMap(JSON.parse(fs.readFileSync(path.join(bundleDir, `${name}.map`), "utf8"))),
        );
      } catch {
        maps.set(name, null);
      }
    }
    return maps.get(name);
  };
  const position = /(?:https?:\/\/127\.0\.0\.1:\d+)?\/bundles\/([\w.-]+\.js):(\d+):(\d+)/g;
  return (text) => {
    let frames = 0;
    const out = [];
    for (const line of String(text).split("\n")) {
      const mapped = line.replace(position, (m, name, l, c) => {
        const e = load(name)?.findEntry(+l - 1, +c - 1);
        if (!e?.originalSource) return m;
        const src = e.originalSource.startsWith("file:")
          ? fileURLToPath(e.originalSource)
          : path.resolve(bundleDir, e.originalSource);
        return `${rel(src)}:${e.originalLine + 1}:${e.originalColumn + 1}`;
      });
      if (/^\s+at /.test(mapped)) {
        if (
          mapped.includes("tests/_browser/") || /eval at evaluate|at (async )?<anonymous>:\d/.test(mapped)
        ) continue;
        if (++frames > 5) continue;
      } else frames = 0;
      out.push(mapped);
    }
    return out.join("\n");
  };
}

/**
 * Runs bundled test files one after another in one page of a fresh browser (a new document, so
 * a fresh JS realm, per file). After a timeout or crash the page is replaced.
 */
class PageRunner {
  constructor(browser, baseUrl) {
    this.browser = browser;
    this.baseUrl = baseUrl;
    this.context = null;
    this.page = null;
    this.logs = [];
  }

  async open() {
    if (this.page && !this.page.isClosed()) return this.page;
    this.context = await this.browser.newContext();
    this.page = await this.context.newPage();
    this.page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") this.logs.push(`[console.${m.type()}] ${m.text()}`);
    });
    this.page.on("pageerror", (e) => this.logs.push(`[pageerror] ${e.message}`));
    this.page.on("crash", () => this.logs.push("[page crashed]"));
    return this.page;
  }

  async reset() {
    const context = this.context;
    this.context = null;
    this.page = null;
    if (context) await Promise.race([context.close().catch(() => {}), timeout(10_000)]);
  }

  /** Runs one file; returns { results, fileErrors, logs }. */
  async run(bundleName, fileTimeoutMs, extraConfig = {}) {
    this.logs = [];
    const fileErrors = [];
    let results = [];
    let healthy = false;
    try {
      const page = await this.open();
      await page.goto(`${this.baseUrl}/?file=${encodeURIComponent(bundleName)}`, { timeout: 30_000 });
      const run = page.evaluate(async ({ src, testTimeout, extraConfig }) => {
        globalThis.__LATTICE_TEST_CONFIG__ = { ...extraConfig, timeout: testTimeout };
        let loadError = null;
        try {
          await import(src);
        } catch (e) {
          loadError = e && e.stack ? String(e.stack) : String(e);
        }
        const rt = globalThis.__latticeTest;
        const report = rt ? await rt.done() : { results: [], diagnostics: [], onlyUsed: false };
        return { loadError, registered: !!rt, ...report };
      }, { src: `/bundles/${bundleName}`, testTimeout: TEST_TIMEOUT_MS, extraConfig });
      run.catch(() => {});
      const limit = timeout(fileTimeoutMs, TIMED_OUT);
      let res;
      try {
        res = await Promise.race([run, limit]);
      } catch (e) {
        res = { crashed: String(e?.message ?? e).split("\n")[0] };
      } finally {
        limit.cancel();
      }
      if (res === TIMED_OUT) {
        const probe = page.evaluate(() => ({
          current: globalThis.__latticeTest?.current?.() ?? null,
          results: globalThis.__latticeTest?.results?.() ?? [],
        }));
        probe.catch(() => {});
        const partial = await Promise.race([probe, timeout(3000, null)]);
        results = partial?.results ?? [];
        fileErrors.push({
          name: "(file timed out)",
          message: `no result after ${secs(fileTimeoutMs)}` +
            (partial?.current ? `; still running: ${partial.current}` : ""),
        });
      } else if (res.crashed) {
        fileErrors.push({ name: "(page failure)", message: res.crashed });
      } else {
        healthy = true;
        results = res.results;
        if (res.loadError) {
          const hint = /node:|bun:/.test(res.loadError)
            ? "\n(the file imports a server-only module: tag it `// @server-only: <reason>` in its first 5 lines)"
            : "";
          fileErrors.push({ name: "(module failed to load)", message: res.loadError + hint });
        } else if (!res.registered) {
          fileErrors.push({ name: "(no tests)", message: "the file registered no node:test tests" });
        }
        if (res.onlyUsed) {
          fileErrors.push({
            name: "(only used)",
            message: "a test uses `only`; remove it before committing",
          });
        }
      }
    } catch (e) {
      fileErrors.push({ name: "(page failure)", message: String(e?.message ?? e).split("\n")[0] });
    } finally {
      if (!healthy) await this.reset();
    }
    return { results, fileErrors, logs: this.logs };
  }
}

async function stageBrowser(allFiles, tmp, handles, deno) {
  const files = allFiles.filter((f) => !isServerOnly(f));
  const serverOnly = allFiles.length - files.length;
  header(
    `chromium: ${plural(files.length, "file")}${serverOnly ? ` (${serverOnly} @server-only left out)` : ""}`,
  );
  const tally = newTally("chromium");
  const started = Date.now();
  const deadline = started + STAGE_TIMEOUT_MS;
  const found = findChromium();
  if (found.error) {
    tally.failed++;
    tally.notes.push("browser stage could not run");
    tally.failures.push({ name: "chromium not found", message: found.error });
    return finishStage(tally, Date.now() - started);
  }
  if (!files.length) return finishStage(tally, Date.now() - started);

  let lap = Date.now();
  const since = () => {
    const ms = Date.now() - lap;
    lap = Date.now();
    return secs(ms);
  };
  const esbuild = await import("esbuild");
  const bundleDir = path.join(tmp, "bundles");
  fs.mkdirSync(bundleDir, { recursive: true });
  const bundles = await Promise.all(files.map(async (file, i) => {
    const name = `${i}-${path.basename(file).replace(/[^\w.-]/g, "_").replace(/\.ts$/, "")}.js`;
    const error = await bundle(esbuild, file, path.join(bundleDir, name));
    return { file, name, error };
  }));
  for (const b of bundles.filter((b) => b.error)) {
    tally.failed++;
    tally.failures.push({ file: b.file, name: "(cannot run in a browser)", message: b.error });
  }
  const runnable = bundles.filter((b) => !b.error);
  detail(`bundled ${plural(files.length, "file")} (${since()})`);
  if (runnable.length) {
    const mapStack = stackMapper(bundleDir);
    try {
      const { chromium } = await import("playwright-core");
      const { server, url } = await startServer(bundleDir);
      handles.server = server;
      handles.browser = await chromium.launch({
        executablePath: found.exe,
        headless: true,
        args: CHROMIUM_ARGS,
        timeout: 60_000,
        // This script closes the browser itself on signals (see onSignal).
        handleSIGINT: false,
        handleSIGTERM: false,
        handleSIGHUP: false,
      });
      detail(`chromium ${handles.browser.version()} started (${since()})`);
      const runner = new PageRunner(handles.browser, url);
      for (const b of runnable) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          tally.failed++;
          tally.failures.push({
            file: b.file,
            name: "(not run)",
            message: `stage timed out after ${secs(STAGE_TIMEOUT_MS)}`,
          });
          continue;
        }
        let extraConfig = {};
        const fixture = needsPeerFixture(b.file)
          ? (deno
            ? await startPeerFixture(deno, url)
            : { error: "deno not found in node_modules/.bin; run npm ci" })
          : null;
        if (fixture) {
          handles.fixture = fixture.child ?? null;
          extraConfig = { peer: fixture.ready ?? { error: fixture.error } };
          detail(`${b.file}: lattice serve fixture ${fixture.ready ? "ready" : "failed"} (${since()})`);
        }
        const { results, fileErrors, logs } = await runner.run(
          b.name,
          Math.min(BROWSER_FILE_TIMEOUT_MS, remaining),
          extraConfig,
        );
        if (fixture?.child) {
          handles.fixture = null;
          const code = await stopPeerFixture(fixture.child);
          if (fixture.ready && code !== 0) {
            fileErrors.push({
              name: "(lattice serve fixture)",
              message: `the fixture node exited with ${code} instead of 0 after SIGTERM`,
            });
          }
        }
        detail(`${b.file}: ${plural(results.length, "result")} (${since()})`);
        let fileFailed = fileErrors.length > 0;
        for (const r of results) {
          if (r.status === "pass") tally.passed++;
          else if (r.status === "fail") {
            tally.failed++;
            fileFailed = true;
            tally.failures.push({ file: b.file, name: r.name, message: mapStack(r.error ?? "") });
          } else tally.skipped++;
        }
        for (const e of fileErrors) {
          tally.failed++;
          tally.failures.push({ file: b.file, ...e, message: mapStack(e.message) });
        }
        if (fileFailed && logs.length) {
          // Context only, not counted.
          tally.failures.push({
            file: b.file,
            name: "browser console",
            message: mapStack(lastLines(logs.join("\n"), 20)),
            note: true,
          });
        }
      }
    } catch (e) {
      tally.failed++;
      tally.failures.push({ name: "(browser failure)", message: String(e?.stack ?? e) });
    } finally {
      await closeHandles(handles);
      detail(`chromium closed (${since()})`);
    }
  }
  return finishStage(tally, Date.now() - started);
}

async function closeHandles(handles) {
  const browser = handles.browser;
  const server = handles.server;
  const fixture = handles.fixture;
  handles.browser = null;
  handles.server = null;
  handles.fixture = null;
  if (fixture) await stopPeerFixture(fixture);
  if (browser) await Promise.race([browser.close().catch(() => {}), timeout(15_000)]);
  if (server) {
    server.closeAllConnections?.();
    await new Promise((r) => server.close(() => r()));
  }
}

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
  VERBOSE = !!parsed.values.verbose;
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
  const summarize = () => {
    const passed = outcomes.reduce((n, o) => n + o.passed, 0);
    const failed = outcomes.reduce((n, o) => n + o.failed, 0);
    log("");
    for (const o of outcomes) log(o.line);
    const bad = outcomes.filter((o) => o.failed).map((o) => o.label);
    log(
      `total ${secs(Date.now() - t0)}; ${
        bad.length ? red(`failed: ${bad.join(", ")}`) : green("all stages passed")
      }`,
    );
    log(`${passed} passed, ${failed} failed`);
    return failed ? 1 : 0;
  };

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
        outcomes.push(await stageChecks(deno));
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
  interrupted = true;
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
