/**
 * Runs a bench child script in a fresh process of this runtime (Deno with
 * `--v8-flags=--expose-gc`, so the child can force a collection before it
 * reads its RSS; Bun as is) and resolves with the last JSON line it printed.
 * Shared by the suites that measure in fresh processes (`local`, `open_big`).
 * Not a suite.
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtimeName } from "../runtime/detect.ts";

const REPO = fileURLToPath(new URL("../", import.meta.url));

/** Options of {@link runChild}. */
export interface ChildOptions {
  /** Longest the child may take before it is killed and the call rejects. */
  readonly timeoutMs: number;
  /** The child kills itself with SIGKILL on purpose (a crash test): that, not exit 0, is success. */
  readonly killed?: boolean;
}

/** Runs `script args…`; rejects, with its stderr, unless it ends as expected and printed a JSON line. */
export function runChild(
  script: string,
  args: readonly string[],
  options: ChildOptions,
): Promise<Record<string, unknown>> {
  const argv = runtimeName() === "deno"
    ? ["run", "-A", "--v8-flags=--expose-gc", script, ...args]
    : [script, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, {
      cwd: REPO,
      stdio: ["ignore", "pipe", "pipe"],
      // Deno checks for a new version of itself over the network unless told not to.
      env: { ...process.env, DENO_NO_UPDATE_CHECK: "1" },
    });
    let out = "", err = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
    child.on("error", reject);
    const timer = setTimeout(() => {
      err += `\n(killed after ${options.timeoutMs / 1000} s)`;
      child.kill("SIGKILL");
    }, options.timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const expected = options.killed ? signal === "SIGKILL" && !err.includes("(killed after") : code === 0;
      const line = out.trim().split("\n").filter((l) => l.startsWith("{")).pop();
      if (!expected || line === undefined) {
        reject(
          new Error(`${script} ${args.join(" ")} ended with ${signal ?? code}: ${err.trim() || out.trim()}`),
        );
      } else resolve(JSON.parse(line));
    });
  });
}
