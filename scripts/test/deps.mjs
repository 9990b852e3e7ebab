/**
 * Stage "deps": checks that node_modules matches package-lock.json and runs `npm ci` when it does
 * not. Skipped entirely with LATTICE_SKIP_DEPS=1 (see scripts/test.mjs), for worktrees whose
 * node_modules is a symlink to another checkout's: `npm ci` there would wipe the other checkout.
 *
 * @module
 */

import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { NPM_TIMEOUT_MS, ROOT } from "./config.mjs";
import { bold, header, indent, lastLines, log, red, secs } from "./output.mjs";
import { describeExit, runCommand } from "./process.mjs";
import { readJson } from "./files.mjs";
import { isForeignOptional, lockDrift, manifestDrift, onlyMissingOptionals } from "./lockfile.mjs";

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
      // npm leaves out an optional package whose install failed (hnswlib-node, a native addon only the
      // vector bench uses, where no compiler is found): that is not drift, and npm ci would fail again.
      if (want.optional) continue;
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
 * what it wrote to the lockfile when the difference is only such packages (scripts/test/lockfile.mjs), and
 * put the committed lockfile back. Anything else it changed means the lockfile is stale: fail.
 */
export async function stageDeps() {
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
