/**
 * The `lattice` command line: `lattice <command> [--path DIR] [--url URL] [--json]`.
 * Run it as `deno run -A cli.ts …`, `bun cli.ts …` or `deno task cli …`;
 * `lattice help` lists the commands.
 *
 * Without `--url` a command opens the database directory `--path` (default
 * `$LATTICE_PATH`, else `./.lattice`) directly, so it fails while another
 * process (such as a running node) holds that directory.
 *
 * With `--url` the token of the node's HTTP API comes from `--token`, else
 * `$LATTICE_TOKEN`, else `<--path>/http-token` when that file exists (the
 * node's own directory, on the same machine).
 *
 * Exit codes: 0 ok, 1 error, 2 usage error, 3 not found. With `--json`,
 * standard output is one JSON value per line; errors always go to standard
 * error as one sentence.
 *
 * This file is the entry point: it parses the command line, settles the
 * context (path, URL, token) and hands each command to its room in cli/ —
 * commands.ts (the tables and help texts), args.ts (parsing), context.ts
 * (opening a database or reaching a node), init.ts, data.ts (put, get,
 * delete, list, query), vectors.ts (search, index), status.ts (status, peers), identity.ts, serve.ts, bench.ts,
 * errors.ts and output.ts (exit codes, stdout, error reports), host.ts.
 *
 * @example
 * ```ts ignore
 * import { main } from "./cli.ts";
 * const code = await main(["status", "--path", "./data", "--json"]);
 * ```
 *
 * @module
 */
import process from "node:process";
import { checkToken } from "./net/token.ts";
import { VERSION } from "./version.ts";
import { type CliHost, processHost } from "./cli/host.ts";
import { checkArgument, CliError, EXIT_ERROR, EXIT_OK, OutputClosedError, UsageError } from "./cli/errors.ts";
import { Printer, report } from "./cli/output.ts";
import { commandHelp, COMMANDS, generalHelp } from "./cli/commands.ts";
import { checkUsage, parseArgs, parseCount } from "./cli/args.ts";
import { type Context, urlToken } from "./cli/context.ts";
import { init } from "./cli/init.ts";
import { del, get, list, put, query } from "./cli/data.ts";
import { peers, status } from "./cli/status.ts";
import { serveCommand } from "./cli/serve.ts";
import { bench } from "./cli/bench.ts";
import { index, search } from "./cli/vectors.ts";
import { identity } from "./cli/identity.ts";

export { type CliHost, processHost };

/**
 * Runs the CLI on `args` (the arguments after the program name) and returns
 * the exit code. Output goes through `host` (default: this process).
 */
export async function main(args: readonly string[], host: CliHost = processHost()): Promise<number> {
  const out = new Printer(host);
  let code: number;
  try {
    code = await run(args, host, out);
    await out.flush();
  } catch (e) {
    if (e instanceof OutputClosedError) return EXIT_OK; // the reader has what it wanted
    try {
      await out.flush();
    } catch {
      // stdout is gone; the error still goes to stderr
    }
    code = await report(e, host);
  }
  return code;
}

async function run(args: readonly string[], host: CliHost, out: Printer): Promise<number> {
  const p = parseArgs(args);
  const json = p.flags.has("json");
  const name = p.command;
  if (name !== undefined && !Object.hasOwn(COMMANDS, name)) {
    throw new UsageError(
      `unknown command ${JSON.stringify(name)}; the commands are ${Object.keys(COMMANDS).join(", ")}`,
    );
  }
  if (p.flags.has("help")) {
    if (name === "bench") return await bench(p, out, true);
    await out.line(name === undefined || name === "help" ? generalHelp() : commandHelp(name));
    return EXIT_OK;
  }
  if (p.flags.has("version")) {
    await out.line(json ? JSON.stringify({ version: VERSION }) : `lattice ${VERSION}`);
    return EXIT_OK;
  }
  if (name === undefined) throw new UsageError("missing command");
  if (name === "bench") return await bench(p, out, false);
  const spec = COMMANDS[name];
  if (spec.unavailable) {
    throw new CliError(
      `The ${name} command is not available yet in this version of Lattice (${VERSION}).`,
      EXIT_ERROR,
    );
  }
  checkUsage(name, p);
  if (name === "help") {
    const topic = p.positionals[0];
    if (topic !== undefined && !Object.hasOwn(COMMANDS, topic)) {
      throw new UsageError(`no help for unknown command ${JSON.stringify(topic)}`, "help");
    }
    await out.line(topic === undefined || topic === "help" ? generalHelp() : commandHelp(topic));
    return EXIT_OK;
  }
  const url = p.flags.get("url") as string | undefined;
  if (url !== undefined) {
    if (name === "init" || name === "serve" || name === "identity") {
      throw new UsageError(`${name} works on a directory (--path), not on a running node (--url)`, name);
    }
    if (!/^https?:\/\/[^/]/.test(url)) {
      throw new UsageError(
        `option --url must be an http:// URL such as http://127.0.0.1:7420, got ${JSON.stringify(url)}`,
        name,
      );
    }
  } else if (name === "peers") {
    throw new UsageError("peers asks a running node: give its --url", name);
  }
  const given = p.flags.get("path") as string | undefined;
  const path = host.resolvePath(given ?? (host.env("LATTICE_PATH") || "./.lattice"));
  const flagToken = p.flags.get("token") as string | undefined;
  if (flagToken !== undefined) {
    if (url === undefined && name !== "serve") {
      throw new UsageError("option --token goes with --url (or serve)", name);
    }
    checkArgument(name, "--token", () => checkToken(flagToken, "the token"));
  }
  if (name === "serve" && flagToken !== undefined && p.flags.has("no-auth")) {
    throw new UsageError("--token and --no-auth contradict each other", name);
  }
  const token = url === undefined ? undefined : await urlToken(flagToken, host, path);
  const ctx: Context = { host, out, json, path, url, token };
  if (name === "serve") return await serveCommand(ctx, p);
  const [a, b] = p.positionals;
  switch (name) {
    case "init":
      return await init(ctx, p.flags.has("encrypt"));
    case "put":
      return await put(ctx, a, b);
    case "get":
      return await get(ctx, a);
    case "delete":
      return await del(ctx, a, b);
    case "list": {
      const prefix = p.flags.get("prefix") as string | undefined;
      const limit = p.flags.has("limit")
        ? parseCount(name, "limit", p.flags.get("limit") as string)
        : undefined;
      return await list(ctx, prefix, limit);
    }
    case "query":
      return await query(ctx, a);
    case "status":
      return await status(ctx);
    case "peers":
      return await peers(ctx);
    case "search":
      return await search(ctx, p);
    case "index":
      return await index(ctx, p);
    case "identity":
      return await identity(ctx, p);
  }
  throw new Error(`Command ${name} has no implementation`);
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  process.exit(code);
}
