/**
 * What the CLI writes: standard output through a {@link Printer} (buffered
 * lines, so that `lattice list` of a large database is not one write per
 * node), and every failure through {@link report} as one line on standard
 * error, worded for the user, with the exit code it maps to.
 *
 * @module
 */
import type { CliHost } from "./host.ts";
import { CliError, EXIT_ERROR, UsageError } from "./errors.ts";

/** Buffered standard output: lines are written in chunks, and a closed reader stops the command. */
export class Printer {
  #host: CliHost;
  #buf = "";
  constructor(host: CliHost) {
    this.#host = host;
  }
  async line(text: string): Promise<void> {
    this.#buf += text + "\n";
    if (this.#buf.length >= 1 << 16) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.#buf === "") return;
    const text = this.#buf;
    this.#buf = "";
    await this.#host.stdout(text);
  }
}

/** Prints `e` as one line on stderr and returns the exit code. */
export async function report(e: unknown, host: CliHost): Promise<number> {
  const debug = !!host.env("LATTICE_DEBUG") && host.env("LATTICE_DEBUG") !== "0";
  let code = EXIT_ERROR;
  let message: string;
  const err = e instanceof Error ? e : new Error(String(e));
  if (err instanceof UsageError) {
    code = err.code;
    const help = err.command ? `lattice help ${err.command}` : "lattice help";
    message = `lattice${err.command ? " " + err.command : ""}: ${
      sentence(err.message, false)
    }; see "${help}".`;
  } else if (err instanceof CliError) {
    code = err.code;
    message = `lattice: ${sentence(err.message)}`;
  } else if (err.name === "LockedError") {
    message = `lattice: ${sentence(err.message, false)}; stop that process to use the directory here, ` +
      "or if it is a running node (lattice serve), send commands to it with --url http://host:port.";
  } else if (err.name === "RemoteError" && (err as { status?: number }).status === 401) {
    message = `lattice: ${sentence(err.message, false)}; give it with --token, LATTICE_TOKEN, ` +
      "or --path DIR of the node's directory (DIR/http-token).";
  } else if (
    ["ConnectionError", "RemoteError", "TimeoutError", "DiskFullError", "IdentityFileError"].includes(
      err.name,
    )
  ) {
    message = `lattice: ${sentence(err.message)}`;
  } else if (isSystemError(err)) {
    message = `lattice: ${sentence(err.message)}`;
  } else {
    message = `lattice: unexpected error: ${sentence(err.message, false)}` +
      (debug ? "." : " (set LATTICE_DEBUG=1 to see the stack trace).");
  }
  try {
    await host.stderr(message + "\n");
    if (debug && err.stack) await host.stderr(err.stack + "\n");
  } catch {
    // stderr is closed too: the exit code is all that is left
  }
  return code;
}

/**
 * Errors of the operating system (no permission, no space, …) and missing
 * Deno permissions: the user's to fix, not bugs.
 */
function isSystemError(e: Error): boolean {
  if (e.name === "NotCapable" || e.name === "PermissionDenied") return true;
  const code = (e as { code?: unknown }).code;
  return typeof code === "string" && /^E[A-Z]+$/.test(code);
}

/** One line, ending with a full stop unless `end` is false (then without one). */
function sentence(text: string, end = true): string {
  const line = text.replace(/\s*\n\s*/g, " ").trim().replace(/[.;:,]+$/, "");
  return end ? line + "." : line;
}
