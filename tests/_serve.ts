// @server-only: spawns `lattice serve` child processes. It loads node: modules with import() when
// called, so tests/_peer_fixture.ts (bundled for Chromium, which never calls it) may import it.
/**
 * A serve node as a child process of the runtime running the test
 * (`deno run -A cli.ts …` under Deno, `bun cli.ts …` under Bun), started as
 * users start it: {@link startServe} waits for its ready line and hands back
 * the line parsed, its output so far, and ways to stop it.
 *
 * Not a test file (no `.test.` in its name).
 */

/** The first line a serve node prints, plain or `--json`. */
export interface ServeReady {
  /** The line as printed, without its newline. */
  readonly line: string;
  /** The HTTP API, `http://HOST:PORT`. */
  readonly http: string;
  /** The node's peer id, or null when it runs without a network (`-` in the plain line). */
  readonly peerId: string | null;
  /** The multiaddrs it listens on for peers. */
  readonly addrs: readonly string[];
  /** The HTTP API's token, from a `--json` line (null without auth, or from a plain line: read `<dir>/http-token`). */
  readonly token: string | null;
}

/** A started serve node. */
export interface ServeProcess {
  readonly pid: number;
  /** Its ready line. */
  readonly ready: ServeReady;
  /** Its exit code once it has exited (null when a signal ended it). */
  readonly exited: Promise<number | null>;
  /** What it has written to stdout so far. */
  stdout(): string;
  /** What it has written to stderr so far. */
  stderr(): string;
  /** Sends `signal` (SIGTERM unless told) unless it has exited, and returns its exit code. */
  stop(signal?: "SIGTERM" | "SIGINT"): Promise<number | null>;
  /** Ends it without a word (SIGKILL) and returns once it has exited. */
  kill(): Promise<number | null>;
}

/** How to start a serve node. */
export interface ServeOptions {
  /** The script to run, relative to the repository root (default `cli.ts`). */
  readonly script?: string;
  /** Variables added to its environment: of this process's own, the LATTICE_* ones are left out. */
  readonly env?: Readonly<Record<string, string>>;
  /** How long to wait for the ready line, in milliseconds (default 60 000). */
  readonly readyMs?: number;
}

/**
 * Runs `script args…` (by default `cli.ts serve …`: give `serve` in `args`)
 * from the repository root and waits for its first line. If the process
 * exits first, or no line comes within `readyMs`, it is killed and the
 * returned promise rejects with its stderr.
 *
 * @example
 * ```ts ignore
 * import { startServe } from "./_serve.ts";
 * const node = await startServe(["serve", "--memory", "--http", "127.0.0.1:0", "--json"]);
 * const status = await fetch(node.ready.http + "/v1/status"); // reads from loopback need no token
 * await fetch(node.ready.http + "/v1/nodes/a", {
 *   method: "PUT",
 *   headers: { authorization: `Bearer ${node.ready.token}` },
 *   body: "{}",
 * });
 * console.log(await status.json(), await node.stop());
 * ```
 */
export async function startServe(args: readonly string[], options: ServeOptions = {}): Promise<ServeProcess> {
  const { spawn } = await import("node:child_process");
  const process = (await import("node:process")).default;
  const { fileURLToPath } = await import("node:url");
  const root = fileURLToPath(new URL("..", import.meta.url));
  const script = options.script ?? "cli.ts";
  const cmd = "Deno" in globalThis ? ["run", "-A", script, ...args] : [script, ...args];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("LATTICE_")) env[k] = v;
  }
  Object.assign(env, options.env);
  const child = spawn(process.execPath, cmd, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => stdout += s);
  child.stderr!.setEncoding("utf8").on("data", (s: string) => stderr += s);
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const pid = child.pid!;
  // By pid: Deno's ChildProcess.kill reports the signal it sent as the cause of exit even when
  // the child handled it and exited 0.
  const running = () => child.exitCode === null && child.signalCode === null;
  const stop = async (signal: "SIGTERM" | "SIGINT" | "SIGKILL" = "SIGTERM"): Promise<number | null> => {
    if (running()) process.kill(pid, signal);
    return await exited;
  };

  const readyMs = options.readyMs ?? 60_000;
  const deadline = Date.now() + readyMs;
  while (!stdout.includes("\n")) {
    const late = Date.now() > deadline;
    if (late || !running()) {
      const code = await stop("SIGKILL");
      const why = late ? `within ${readyMs} ms` : `(exit code ${code})`;
      throw new Error(`\`${[script, ...args].join(" ")}\` printed no ready line ${why}; stderr: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  let ready: ServeReady;
  try {
    ready = parseReady(stdout.slice(0, stdout.indexOf("\n")));
  } catch (e) {
    await stop("SIGKILL");
    throw e;
  }
  return {
    pid,
    ready,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    stop,
    kill: () => stop("SIGKILL"),
  };
}

/**
 * Parses a ready line: `{"ready":true,"http":…,"peerId":…,"addrs":[…],"token":…}` or
 * `ready HTTP-URL PEER-ID|- MULTIADDR…`.
 */
function parseReady(line: string): ServeReady {
  if (line.startsWith("{")) {
    const json = JSON.parse(line) as {
      http: string;
      peerId: string | null;
      addrs: string[];
      token: string | null;
    };
    return { line, http: json.http, peerId: json.peerId, addrs: json.addrs, token: json.token };
  }
  const [word, http, peerId, ...addrs] = line.split(" ");
  if (word !== "ready" || !http || !peerId) throw new SyntaxError(`Cannot parse the ready line: ${line}`);
  return { line, http, peerId: peerId === "-" ? null : peerId, addrs, token: null };
}
