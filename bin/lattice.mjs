#!/usr/bin/env node
/**
 * The `lattice` command of the npm package (`npm install -g lattice-db`, `npx lattice-db`).
 *
 * npm runs this file with Node, but Lattice's server side needs Deno or Bun (Node 20 cannot run
 * libp2p 3). So this launcher finds a runtime — Deno, else Bun; each first among the package's
 * own dependencies (`node_modules/.bin` here and in the folders above, as npm lays them out),
 * then on PATH — and runs the built `dist/node/cli.js` with it, passing the arguments, the
 * standard streams, signals and the exit code through. It runs JavaScript, not `cli.ts`: Deno
 * refuses to strip types from `.ts` files under `node_modules`.
 *
 * `LATTICE_RUNTIME=deno|bun` picks one runtime (still searched for as above).
 *
 * Plain Node ESM (Node ≥ 20), no dependencies.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CLI = path.join(PKG, "dist", "node", "cli.js");
const EXE = process.platform === "win32" ? [".exe", ".cmd", ""] : [""];

/** An executable `name` in `dir`, or null. */
function executable(dir, name) {
  for (const ext of EXE) {
    const file = path.join(dir, name + ext);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** `name` from the package's own dependencies, else from PATH, or null. */
function find(name) {
  for (let dir = PKG;; dir = path.dirname(dir)) {
    const found = executable(path.join(dir, "node_modules", ".bin"), name) ??
      (path.basename(dir) === "node_modules" ? executable(path.join(dir, ".bin"), name) : null);
    if (found) return found;
    if (path.dirname(dir) === dir) break;
  }
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const found = dir ? executable(dir, name) : null;
    if (found) return found;
  }
  return null;
}

/** The command line that runs the CLI with `runtime`. */
function command(runtime, exe, args) {
  // --node-modules-dir=manual: resolve the dependencies from node_modules as npm installed them;
  // --no-config: a deno.json in the user's working directory does not change how Lattice runs.
  if (runtime === "deno") {
    return [exe, ["run", "-A", "--no-config", "--node-modules-dir=manual", CLI, ...args]];
  }
  return [exe, [CLI, ...args]];
}

function main() {
  const wanted = process.env.LATTICE_RUNTIME;
  if (wanted && wanted !== "deno" && wanted !== "bun") {
    process.stderr.write(
      `lattice: LATTICE_RUNTIME must be "deno" or "bun", not ${JSON.stringify(wanted)}.\n`,
    );
    return process.exit(2);
  }
  if (!fs.existsSync(CLI)) {
    process.stderr.write(
      `lattice: ${CLI} is missing: this copy of lattice-db was not built (npm pack builds it).\n`,
    );
    return process.exit(1);
  }
  const runtimes = wanted ? [wanted] : ["deno", "bun"];
  let runtime, exe;
  for (const name of runtimes) {
    exe = find(name);
    if (exe) {
      runtime = name;
      break;
    }
  }
  if (!exe) {
    process.stderr.write(
      `lattice: found no ${runtimes.join(" or ")} to run on: Lattice needs Deno or Bun. ` +
        "Install one (npm install -g deno, or see https://deno.com and https://bun.sh) and run lattice again.\n",
    );
    return process.exit(1);
  }
  const [cmd, args] = command(runtime, exe, process.argv.slice(2));
  const env = { ...process.env, DENO_NO_UPDATE_CHECK: "1" };
  const child = spawn(cmd, args, { stdio: "inherit", env });
  // Pass signals on. Ctrl-C in a terminal reaches the whole foreground group, the child too: passing
  // it on as well would be a second SIGINT, which makes `lattice serve` give up its clean shutdown.
  const terminal = process.stdin.isTTY || process.stdout.isTTY || process.stderr.isTTY;
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => {
      if (signal !== "SIGINT" || !terminal) child.kill(signal);
    });
  }
  child.on("error", (e) => {
    process.stderr.write(`lattice: cannot start ${exe}: ${e.message}.\n`);
    process.exit(1);
  });
  child.on("exit", (code, signal) => {
    if (signal) {
      // End the same way, so a shell sees the signal; if it is ignored here, fall back to 128 + n.
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
      setTimeout(() => process.exit(1), 100).unref();
      return;
    }
    process.exit(code ?? 1);
  });
}

main();
