// @server-only: runs child processes with node:child_process
/**
 * Child processes for the packaging tests (tests/packaging.test.ts,
 * tests/cdn_bundle.test.ts): run a command to its end, or start a server and
 * wait for its ready line. Children get this process's environment without
 * `LATTICE_*` and `npm_*` variables (a test run by `npm test` must not hand
 * npm's settings to the npm it starts), with colours and update checks off.
 *
 * Not a test file (no `.test.` in its name).
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));
/** node_modules/.bin of the repository (deno, bun, esbuild). */
export const BIN: string = path.join(ROOT, "node_modules", ".bin");

/** The environment for children, with `extra` added. */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("LATTICE_") && !/^npm_/i.test(k)) env[k] = v;
  }
  return {
    ...env,
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
    NPM_CONFIG_UPDATE_NOTIFIER: "false",
    NPM_CONFIG_FUND: "false",
    NPM_CONFIG_AUDIT: "false",
    ...extra,
  };
}

/** `name` on PATH (of this process), or null. */
export function which(name: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const file = dir && path.join(dir, name);
    if (file && fs.existsSync(file) && fs.statSync(file).isFile()) return file;
  }
  return null;
}

/** How a command ended. */
export interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `cmd args…` to its end (killed after `timeoutMs`). */
export function run(
  cmd: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd ?? ROOT,
      env: options.env ?? childEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "", stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (s: string) => stdout += s);
    child.stderr!.setEncoding("utf8").on("data", (s: string) => stderr += s);
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`Cannot run ${cmd}: ${e.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Throws with the command's output unless it exited with 0. */
export function ok(r: Ran, what: string): Ran {
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code}:\n${r.stderr}\n${r.stdout}`);
  return r;
}

/** A started server process. */
export interface Started {
  /** Its first line of stdout. */
  readonly line: string;
  /** Sends SIGTERM (unless it has exited) and resolves with its exit code. */
  stop(): Promise<number | null>;
}

/** Starts `cmd args…` and waits for its first line of stdout (killed if none comes in `readyMs`). */
export function startReady(
  cmd: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; readyMs?: number } = {},
): Promise<Started> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: options.cwd ?? ROOT,
      env: options.env ?? childEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "", stderr = "";
    let exitCode: number | null | undefined;
    const exited = new Promise<number | null>((r) =>
      child.on("close", (code) => {
        exitCode = code;
        r(code);
      })
    );
    // By pid: Deno's ChildProcess.kill reports the signal it sent as the cause of exit even when
    // the child handled it and exited 0 (as tests/_serve.ts notes).
    const signal = (name: "SIGTERM" | "SIGKILL") => {
      if (exitCode === undefined) process.kill(child.pid!, name);
    };
    const stop = async (): Promise<number | null> => {
      signal("SIGTERM");
      const timer = setTimeout(() => signal("SIGKILL"), 15_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${cmd} ${args.join(" ")}: no line after ${options.readyMs ?? 60_000} ms; ${stderr}`));
    }, options.readyMs ?? 60_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`Cannot run ${cmd}: ${e.message}`));
    });
    child.stderr!.setEncoding("utf8").on("data", (s: string) => stderr += s);
    child.stdout!.setEncoding("utf8").on("data", (s: string) => {
      stdout += s;
      const nl = stdout.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        resolve({ line: stdout.slice(0, nl), stop });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} ${args.join(" ")} exited with ${code} before its first line: ${stderr}`));
    });
  });
}
