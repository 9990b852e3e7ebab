/**
 * `lattice bench`: runs the benchmark runner of a checkout, scripts/bench.ts,
 * in a child process of this runtime. The suites and their peer packages
 * live only in a checkout of the repository; an installed lattice (npm
 * package, compiled binary) has none and says where to run them.
 *
 * @module
 */
import process from "node:process";
import { statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Parsed } from "./args.ts";
import { commandHelp } from "./commands.ts";
import { CliError, EXIT_ERROR, EXIT_OK } from "./errors.ts";
import type { Printer } from "./output.ts";

/**
 * Runs scripts/bench.ts in a child process of this runtime (Deno with
 * `--v8-flags=--expose-gc`, as `deno task bench` does; Bun as `bun
 * scripts/bench.ts`), passing the arguments after `bench` through and
 * returning its exit code. The suites and their peer packages (gun, yjs,
 * mitata) live only in a checkout of the repository, never in an installed
 * package or a compiled binary: there it says so and where to run them.
 */
export async function bench(p: Parsed, out: Printer, help: boolean): Promise<number> {
  const script = benchScript();
  const wantsHelp = help || p.rest.includes("--help") || p.rest.includes("-h");
  if (wantsHelp) {
    await out.line(commandHelp("bench"));
    if (script === undefined) return EXIT_OK;
    await out.line("\nThe runner of this checkout, scripts/bench.ts, and its suites:");
  }
  if (script === undefined) {
    throw new CliError(
      "The benchmark suites are not part of an installed lattice: clone the Lattice repository, run npm install there, then run `deno task bench SUITE` (or `lattice bench SUITE` from the checkout)",
      EXIT_ERROR,
    );
  }
  const args = [...(p.flags.has("json") ? ["--json"] : []), ...(wantsHelp ? ["--help"] : p.rest)];
  const argv = "Bun" in globalThis
    ? [script, ...args]
    : ["run", "-A", "--v8-flags=--expose-gc", script, ...args];
  await out.flush();
  const { spawn } = await import("node:child_process");
  return await new Promise<number>((done, fail) => {
    const child = spawn(process.execPath, argv, { stdio: "inherit" });
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
    const onInt = forward("SIGINT");
    const onTerm = forward("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
    const stop = () => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
    };
    child.on("error", (e) => {
      stop();
      fail(new CliError(`Cannot start the benchmark runner ${process.execPath}: ${e.message}`, EXIT_ERROR));
    });
    child.on("exit", (code, signal) => {
      stop();
      done(code ?? (signal ? EXIT_ERROR : EXIT_OK));
    });
  });
}

/**
 * The path of scripts/bench.ts in the checkout this file is in, or `undefined`
 * elsewhere (a bundle in dist/node/ or a compiled binary has no ../scripts/).
 */
function benchScript(): string | undefined {
  const url = new URL("../scripts/bench.ts", import.meta.url);
  if (url.protocol !== "file:") return undefined;
  const path = fileURLToPath(url);
  try {
    return statSync(path).isFile() && statSync(new URL("../bench/", import.meta.url)).isDirectory()
      ? path
      : undefined;
  } catch {
    return undefined;
  }
}
