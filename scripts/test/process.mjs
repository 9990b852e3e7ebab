/**
 * Child processes of the runner: every tool runs in its own process group, with its output
 * captured (and streamed with --verbose), and the whole group is killed when the tool exits or
 * times out, so nothing a test started outlives its stage. `activeChildren` lets the signal
 * handler reap what is still running.
 *
 * @module
 */

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { Buffer } from "node:buffer";
import { BIN, ROOT } from "./config.mjs";
import { isVerbose, secs } from "./output.mjs";

export const activeChildren = new Set();

export function killGroup(child, signal) {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Environment for the tools: no colours (output is parsed), no update checks, no telemetry. */
export function toolEnv(extra = {}) {
  const env = { ...process.env, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", DO_NOT_TRACK: "1", ...extra };
  delete env.FORCE_COLOR;
  delete env.RUST_BACKTRACE;
  return env;
}

/**
 * Runs a command in its own process group, capturing stdout+stderr interleaved. On exit, and on
 * timeout, the whole group is killed so that nothing a test started outlives its stage.
 */
export function runCommand(
  cmd,
  args,
  { timeoutMs = 0, env = toolEnv(), stream = isVerbose(), cwd = ROOT } = {},
) {
  return new Promise((resolve) => {
    const start = Date.now();
    const chunks = [];
    let size = 0;
    const LIMIT = 8 << 20;
    let settled = false;
    let timedOut = false;
    let spawnError = null;
    const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
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

export function describeExit(r) {
  if (r.error) return `could not start: ${r.error.message}`;
  if (r.timedOut) return `timed out after ${secs(r.ms)}`;
  if (r.signal) return `killed by ${r.signal}`;
  return `exit code ${r.code}`;
}

export function tool(name) {
  const local = path.join(BIN, name);
  if (fs.existsSync(local)) return local;
  const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  return found.status === 0 ? found.stdout.trim() : null;
}

export function timeout(ms, value) {
  let timer;
  const p = new Promise((resolve) => {
    timer = setTimeout(() => resolve(value), ms);
    timer.unref?.();
  });
  p.cancel = () => clearTimeout(timer);
  return p;
}

export const TIMED_OUT = Symbol("timed out");
