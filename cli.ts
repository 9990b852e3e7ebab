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
 * @example
 * ```ts ignore
 * import { main } from "./cli.ts";
 * const code = await main(["status", "--path", "./data", "--json"]);
 * ```
 *
 * @module
 */
import process from "node:process";
import { statSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { open } from "./mod.ts";
import type { Database } from "./core/database.ts";
import { fromJson, toJson } from "./core/json.ts";
import { checkField, checkSoul, flatten } from "./core/value.ts";
import { DB_FILE } from "./storage/sqlite.ts";
import { connect, type RemoteDatabase } from "./net/client.ts";
import { DEFAULT_HTTP, parseHostPort, serve } from "./net/serve.ts";
import { startNetwork } from "./net/network.ts";
import { checkCorsOrigin, checkServedHost } from "./net/http.ts";
import { checkToken, ensureTokenFile, readTokenFile } from "./net/token.ts";
import { VERSION } from "./version.ts";

// ---------------------------------------------------------------- the runtime

/** What the CLI needs from its runtime; {@link processHost} provides it on Deno, Bun and Node. */
export interface CliHost {
  /** An environment variable, or `undefined`. */
  env(name: string): string | undefined;
  /** `path` made absolute against the working directory. */
  resolvePath(path: string): string;
  /** What is at `path`. */
  pathKind(path: string): "directory" | "file" | "missing";
  /** Writes to standard output; resolves once written, rejects if the reader is gone. */
  stdout(text: string): Promise<void>;
  /** Writes to standard error. */
  stderr(text: string): Promise<void>;
}

/** The {@link CliHost} of this process, through `node:` modules (which Deno and Bun provide too). */
export function processHost(): CliHost {
  const write =
    (stream: { write(text: string, done: (e?: Error | null) => void): boolean }) =>
    (text: string): Promise<void> =>
      new Promise((done, fail) => {
        stream.write(text, (e) => e ? fail(new OutputClosedError(e.message)) : done());
      });
  // A closed pipe (`lattice list | head -1`) also surfaces as an 'error' event: the write above reports it.
  process.stdout.on("error", () => {});
  return {
    env: (name) => {
      try {
        return process.env[name];
      } catch {
        return undefined; // Deno without --allow-env
      }
    },
    resolvePath: (path) => resolve(path),
    pathKind: (path) => {
      try {
        return statSync(path).isDirectory() ? "directory" : "file";
      } catch (e) {
        if ((e as { code?: string }).code === "ENOENT") return "missing";
        throw e;
      }
    },
    stdout: write(process.stdout),
    stderr: write(process.stderr),
  };
}

// ---------------------------------------------------------------- errors

/** A failure to report as one sentence with an exit code (never a stack trace). */
class CliError extends Error {
  override name = "CliError";
  readonly code: number;
  constructor(message: string, code: number) {
    super(message);
    this.code = code;
  }
}

/** A command-line mistake (exit 2); `command` names the help to point at. */
class UsageError extends CliError {
  override name = "UsageError";
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message, 2);
    this.command = command;
  }
}

/** Standard output was closed by its reader. */
class OutputClosedError extends Error {
  override name = "OutputClosedError";
}

const EXIT_OK = 0, EXIT_ERROR = 1, EXIT_NOT_FOUND = 3;

/** Whether `e` is an argument check's complaint (as opposed to a bug). */
const isValidationError = (e: unknown): e is Error =>
  e instanceof TypeError || e instanceof RangeError || e instanceof SyntaxError;

/** Runs `check`; a validation error it throws becomes a usage error about argument `arg`. */
function checkArgument<T>(command: string, arg: string, check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (isValidationError(e)) throw new UsageError(`argument ${arg} is invalid: ${e.message}`, command);
    throw e;
  }
}

// ---------------------------------------------------------------- commands and flags

interface FlagSpec {
  /** Takes a value (`--flag value` or `--flag=value`). */
  readonly value: boolean;
  /** May be given more than once. */
  readonly repeat?: boolean;
}

const FLAGS: Readonly<Record<string, FlagSpec>> = {
  path: { value: true },
  url: { value: true },
  json: { value: false },
  help: { value: false },
  version: { value: false },
  prefix: { value: true },
  limit: { value: true },
  vector: { value: true },
  k: { value: true },
  http: { value: true },
  listen: { value: true, repeat: true },
  bootstrap: { value: true, repeat: true },
  space: { value: true },
  replication: { value: true },
  memory: { value: false },
  mdns: { value: false },
  token: { value: true },
  "cors-origin": { value: true, repeat: true },
  "allow-host": { value: true, repeat: true },
  "no-auth": { value: false },
};
const GLOBAL_FLAGS = ["path", "url", "token", "json", "help", "version"];

interface CommandSpec {
  /** The synopsis after `lattice `. */
  readonly usage: string;
  /** Positional arguments; `[NAME]` is optional. */
  readonly args: readonly string[];
  /** Flags besides the global ones. */
  readonly flags?: readonly string[];
  /** One line for the command list. */
  readonly summary: string;
  /** The rest of `lattice help COMMAND`. */
  readonly details: string;
  /** Set for commands of the design that this version does not have yet. */
  readonly unavailable?: true;
}

const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  init: {
    usage: "init",
    args: [],
    summary: "create the database directory (if needed); show its path, storage and actor id",
    details: `Creates the database directory --path unless it exists and prints its path, storage engine
and this replica's actor id. It also writes DIR/http-token (mode 0600) unless there is one: the
token a node serving DIR asks of writers (lattice serve --path DIR; other commands with --url and
--path DIR read it). Running it again is harmless: it says the database is already there.
With --json: {"path","created","storage","actor","tokenFile"}.`,
  },
  put: {
    usage: "put SOUL JSON",
    args: ["SOUL", "JSON"],
    summary: "merge the fields of a JSON object into node SOUL",
    details: `Merges the fields of the JSON object into node SOUL and prints the soul and the state (the
hybrid-logical-clock time) the write was stamped with. A link is {"#": "other-soul"}; a nested
object becomes a child node SOUL/FIELD linked from the field; bytes are {"$bytes": "<base64>"};
null deletes a field. With --json: {"soul","state"}.
Example: lattice put alice '{"name": "Alice", "pet": {"name": "Rex"}, "friend": {"#": "bob"}}'`,
  },
  get: {
    usage: "get SOUL",
    args: ["SOUL"],
    summary: "print node SOUL as JSON (exit 3 if it does not exist)",
    details: `Prints node SOUL as a JSON object: links as {"#": soul}, bytes as {"$bytes": "<base64>"}.
Exits with 3 when there is no such node. With --json the object is on one line.`,
  },
  delete: {
    usage: "delete SOUL [FIELD]",
    args: ["SOUL", "[FIELD]"],
    summary: "delete node SOUL, or only its field FIELD",
    details: `Deletes every field of node SOUL, or only FIELD, by writing tombstones, and prints the state of
the deletion. Exits with 3 when the node (or the field) does not exist.
With --json: {"soul","field","state"} (field is null when the whole node was deleted).`,
  },
  list: {
    usage: "list [--prefix P] [--limit N]",
    args: [],
    flags: ["prefix", "limit"],
    summary: "print the souls of the nodes, in order",
    details: `Prints the soul of every node, one per line, in soul order (UTF-8 byte order).
  --prefix P   only souls that start with P
  --limit N    at most N nodes
With --json, one {"soul","data"} object per line (use it for souls that contain line breaks).`,
  },
  query: {
    usage: "query JSON",
    args: ["JSON"],
    summary: "follow links from start nodes and filter the nodes reached",
    details: `Runs a graph query given as JSON, as the library's db.query:
  {"from": SOUL or [SOULS], "path": [FIELD or "*", ...], "where": {FIELD: VALUE or CONDITION}, "limit": N}
A condition is {"eq": value, "lt": n, "gt": n, "prefix": "text"}; "*" follows every link.
Prints one result per line: the soul, a tab, the node as JSON. With --json, one {"soul","data"} per line.
Example: lattice query '{"from": "alice", "path": ["friends", "*"], "where": {"age": {"gt": 30}}}'`,
  },
  status: {
    usage: "status",
    args: [],
    summary: "show path, storage, kernels, actor, version and node count",
    details: `Shows the database path, storage engine, kernel implementation and hash backend, this replica's
actor id, the Lattice version and the number of nodes.
With --json: {"path","storage","kernels","hashBackend","actor","version","nodes"}.`,
  },
  serve: {
    usage: "serve [options]",
    args: [],
    flags: [
      "http",
      "listen",
      "bootstrap",
      "space",
      "replication",
      "memory",
      "mdns",
      "cors-origin",
      "allow-host",
      "no-auth",
    ],
    summary: "run a node: storage, peer-to-peer network, HTTP API and inspector",
    details:
      `  lattice serve [--http HOST:PORT] [--listen MULTIADDR]... [--bootstrap MULTIADDR]... [--space NAME]
                [--replication N] [--memory] [--mdns] [--token TOKEN] [--cors-origin ORIGIN]...
                [--allow-host HOST]... [--no-auth]
Runs a node on the database --path (created if needed; --memory keeps data in memory only) in space
--space (default "default") until SIGINT or SIGTERM, then shuts down cleanly and exits 0.
  --http HOST:PORT      HTTP API and inspector (default ${DEFAULT_HTTP}; port 0 picks a free port)
  --mdns                find members of the space on the local network by mDNS (multicast queries on
                        every interface every 10 s; off by default): nodes need no --bootstrap
  --replication N       sharded mode with N replicas per node: not available yet, so serve refuses it;
                        every node of a space keeps all of its data (full replication)
  --token TOKEN         the HTTP API's token (default: DIR/http-token, written if missing; with
                        --memory a fresh one, given only in the --json ready line)
  --cors-origin ORIGIN  let pages of ORIGIN (e.g. http://localhost:5173) call the API; repeatable.
                        Without it no page of another origin can
  --allow-host HOST     serve requests for this host name (a proxy's or a DNS name of this machine);
                        IP addresses and localhost are always served, other names refused
  --no-auth             no token at all: anyone who can reach the port may write (development only)
Writes need the token (Authorization: Bearer TOKEN); reads too unless they come from this machine.
The inspector (the HTTP URL in a browser on this machine) gets it from the node.
When ready it prints one line "ready <http-url> <peer-id> <multiaddr>..." (peer id "-" while the node
has no networking); with --json {"ready":true,"http":...,"peerId":...,"addrs":[...],"token":...}.
Logs go to stderr; LATTICE_LOG=debug|info|warn|error sets how much (default warn).
Other commands reach the node with --url http://HOST:PORT, and --path DIR (or --token) for the token.`,
  },
  search: {
    usage: "search --vector JSON --k N",
    args: [],
    flags: ["vector", "k"],
    unavailable: true,
    summary: "vector similarity search",
    details: `Usage when available: lattice search --vector JSON --k N
Prints the N nodes whose vectors are most similar to the JSON array of numbers given.`,
  },
  peers: {
    usage: "peers --url URL",
    args: [],
    summary: "list the connected peers and their sync state",
    details: `Lists the peers a running node (--url) is connected to, with their addresses and sync state.
With --json, one peer object per line.`,
  },
  bench: {
    usage: "bench [SUITE] [--filter REGEXP]",
    args: ["[SUITE]"],
    summary: "run a benchmark suite (from a checkout of the repository)",
    details: `Runs the mitata benchmark suite bench/SUITE.bench.ts through scripts/bench.ts in a child process
of this runtime; the arguments after "bench" go to that runner (for example --json, --rounds N or
--filter REGEXP), and "lattice bench --help" lists the suites. The suites live in a checkout of the
repository (after npm install there); an installed lattice says so. Same as: deno task bench SUITE`,
  },
  help: {
    usage: "help [COMMAND]",
    args: ["[COMMAND]"],
    summary: "show help for all commands, or for one",
    details: "Shows the list of commands, or the help of COMMAND.",
  },
};

function commandHelp(name: string): string {
  const spec = COMMANDS[name];
  const state = spec.unavailable ? `\nNot available yet in Lattice ${VERSION}.\n` : "";
  return `Usage: lattice ${spec.usage} [--path DIR] [--json]

${spec.summary[0].toUpperCase()}${spec.summary.slice(1)}.
${state}
${spec.details}

${GLOBAL_HELP}`;
}

const GLOBAL_HELP = `Options of every command:
  --path DIR   database directory (default: $LATTICE_PATH, else ./.lattice)
  --url URL    send the command to a running node's HTTP API (lattice serve) instead of opening --path
  --token T    the node's token for --url (default: $LATTICE_TOKEN, else --path DIR/http-token)
  --json       machine-readable output: one JSON value per line
  -h, --help   show help
  --version    print the version`;

function generalHelp(): string {
  const specs = Object.values(COMMANDS);
  const width = Math.max(...specs.map((s) => s.usage.length));
  const lines = specs.map((s) =>
    `  ${s.usage.padEnd(width)}  ${s.summary}${s.unavailable ? " (not available yet)" : ""}`
  );
  return `Lattice ${VERSION}: a peer-to-peer graph database.

Usage: lattice <command> [--path DIR] [--url http://host:port] [--json]

Commands:
${lines.join("\n")}

${GLOBAL_HELP}

Values in JSON: a link is {"#": "soul"}, a nested object becomes a child node (soul/field),
bytes are {"$bytes": "<base64>"}, null deletes a field.
Exit codes: 0 ok, 1 error, 2 usage error, 3 not found.
Environment: LATTICE_PATH (default --path), LATTICE_TOKEN (default --token), LATTICE_KERNELS=auto|wasm|js,
LATTICE_DEBUG=1 (print stack traces of unexpected errors).
Run "lattice help COMMAND" or "lattice COMMAND --help" for the details of a command.`;
}

// ---------------------------------------------------------------- parsing

interface Parsed {
  readonly command: string | undefined;
  readonly positionals: string[];
  readonly flags: Map<string, string | true | string[]>;
  /** For `bench`: the arguments after the command word, untouched. */
  readonly rest: string[];
}

/** Splits the command line; strict: unknown and repeated options are usage errors. */
function parseArgs(args: readonly string[]): Parsed {
  let command: string | undefined;
  const positionals: string[] = [];
  const flags = new Map<string, string | true | string[]>();
  let rest: string[] = [];
  let flagsEnded = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (flagsEnded || arg === "-" || !arg.startsWith("-")) {
      if (command === undefined && !flagsEnded) {
        command = arg;
        if (arg === "bench") {
          rest = args.slice(i + 1);
          break;
        }
      } else positionals.push(arg);
      continue;
    }
    if (arg === "--") {
      flagsEnded = true;
      continue;
    }
    if (arg === "-h") {
      flags.set("help", true);
      continue;
    }
    if (!arg.startsWith("--")) {
      throw new UsageError(`unknown option ${arg} (put "--" before arguments that start with "-")`, command);
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = Object.hasOwn(FLAGS, name) ? FLAGS[name] : undefined;
    if (!spec) throw new UsageError(`unknown option --${name}`, command);
    let value: string | true = true;
    if (spec.value) {
      if (eq >= 0) value = arg.slice(eq + 1);
      else if (i + 1 < args.length && !args[i + 1].startsWith("--")) value = args[++i];
      else if (i + 1 < args.length) {
        throw new UsageError(
          `option --${name} needs a value (write --${name}=VALUE for one that starts with --)`,
          command,
        );
      } else throw new UsageError(`option --${name} needs a value`, command);
      if (value === "") throw new UsageError(`option --${name} needs a value`, command);
    } else if (eq >= 0) {
      throw new UsageError(`option --${name} takes no value`, command);
    }
    const prev = flags.get(name);
    if (spec.repeat) flags.set(name, [...(Array.isArray(prev) ? prev : []), value as string]);
    else if (prev !== undefined) throw new UsageError(`option --${name} is given more than once`, command);
    else flags.set(name, value);
  }
  if (command === undefined && flagsEnded && positionals.length > 0) command = positionals.shift();
  return { command, positionals, flags, rest };
}

/** Checks the options and the number of arguments against the command's spec. */
function checkUsage(name: string, p: Parsed): void {
  const spec = COMMANDS[name];
  const allowed = new Set([...GLOBAL_FLAGS, ...(spec.flags ?? [])]);
  for (const flag of p.flags.keys()) {
    if (!allowed.has(flag)) throw new UsageError(`option --${flag} does not apply to ${name}`, name);
  }
  const required = spec.args.filter((a) => !a.startsWith("[")).length;
  if (p.positionals.length < required) {
    throw new UsageError(`missing argument ${spec.args[p.positionals.length]}`, name);
  }
  if (p.positionals.length > spec.args.length) {
    const extra = p.positionals[spec.args.length];
    throw new UsageError(`unexpected extra argument ${JSON.stringify(extra)}`, name);
  }
}

function parseJsonArgument(command: string, arg: string, text: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`argument ${arg} is not valid JSON: ${(e as Error).message}`, command);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(
      `argument ${arg} must be a JSON object, got ${
        Array.isArray(parsed) ? "an array" : parsed === null ? "null" : `a ${typeof parsed}`
      }`,
      command,
    );
  }
  return checkArgument(command, arg, () => fromJson(parsed));
}

function parseCount(command: string, flag: string, text: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(
      `option --${flag} must be a non-negative integer, got ${JSON.stringify(text)}`,
      command,
    );
  }
  return Number(text);
}

// ---------------------------------------------------------------- output

/** Buffered standard output: lines are written in chunks, and a closed reader stops the command. */
class Printer {
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

// ---------------------------------------------------------------- running

interface Context {
  readonly host: CliHost;
  readonly out: Printer;
  readonly json: boolean;
  /** Absolute database directory. */
  readonly path: string;
  /** The running node to talk to (`--url`), instead of opening `path`. */
  readonly url?: string;
  /** The node's token for `url`, when one was found. */
  readonly token?: string;
}

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
    if (name === "init" || name === "serve") {
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
      return await init(ctx);
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
  }
  throw new Error(`Command ${name} has no implementation`);
}

/** The token for `--url`: `--token`, else `$LATTICE_TOKEN`, else `<path>/http-token` if it exists. */
async function urlToken(flag: string | undefined, host: CliHost, path: string): Promise<string | undefined> {
  if (flag !== undefined) return flag;
  const env = host.env("LATTICE_TOKEN");
  if (env) {
    try {
      return checkToken(env, "LATTICE_TOKEN");
    } catch (e) {
      throw new CliError((e as Error).message, EXIT_ERROR);
    }
  }
  if (host.pathKind(path) !== "directory") return undefined;
  try {
    return await readTokenFile(path);
  } catch (e) {
    if (isValidationError(e)) throw new CliError(e.message, EXIT_ERROR);
    throw e;
  }
}

/**
 * How long a command waits for a directory held by another process before
 * giving up: long enough for another one-shot command (a script running
 * several `lattice put` at once) to finish, short enough not to hang on a
 * running node.
 */
const LOCK_WAIT_MS = 2000;

/** Opens the database at `ctx.path`, waiting up to {@link LOCK_WAIT_MS} for another process to let go of it. */
async function openDatabase(ctx: Context): Promise<Database> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let pause = 20;; pause = Math.min(pause * 2, 200)) {
    try {
      return await open({ path: ctx.path });
    } catch (e) {
      if (e instanceof Error && e.name === "LockedError" && Date.now() + pause < deadline) {
        await new Promise((r) => setTimeout(r, pause));
        continue;
      }
      // Bad settings (e.g. LATTICE_KERNELS) are the user's to fix, not bugs.
      if (isValidationError(e)) throw new CliError(`Cannot open ${ctx.path}: ${e.message}`, EXIT_ERROR);
      throw e;
    }
  }
}

/** What commands use of a database: the local `Database` or a running node's (`--url`). */
type Db = Pick<Database, "put" | "get" | "delete" | "list" | "query" | "close">;

/** Opens the database at `ctx.path` (or connects to `ctx.url`), runs `use`, and closes it whatever happens. */
async function withDatabase<T>(ctx: Context, use: (db: Db) => Promise<T>): Promise<T> {
  const db: Db = ctx.url !== undefined ? connect(ctx.url, { token: ctx.token }) : await openDatabase(ctx);
  let result: T;
  try {
    result = await use(db);
  } catch (e) {
    await db.close().catch(() => {}); // the first error is the one to report
    throw e;
  }
  await db.close();
  return result;
}

/** Fails unless `ctx.path` holds a database: commands other than init never create one. */
function requireDatabase(ctx: Context): void {
  if (ctx.url !== undefined) return; // the node has its database
  const kind = ctx.host.pathKind(ctx.path);
  if (kind === "file") throw new CliError(`${ctx.path} is a file, not a database directory.`, EXIT_ERROR);
  if (kind === "missing" || ctx.host.pathKind(join(ctx.path, DB_FILE)) !== "file") {
    throw new CliError(
      `No database at ${ctx.path}; create one with "lattice init --path ${ctx.path}" or choose another --path.`,
      EXIT_ERROR,
    );
  }
}

async function init(ctx: Context): Promise<number> {
  const kind = ctx.host.pathKind(ctx.path);
  if (kind === "file") throw new CliError(`${ctx.path} is a file, not a database directory.`, EXIT_ERROR);
  const created = kind === "missing" || ctx.host.pathKind(join(ctx.path, DB_FILE)) !== "file";
  // Opening creates the directory (and its parents).
  const { storage, actor } = await withLocalDatabase(
    ctx,
    (db) => Promise.resolve({ storage: db.storage, actor: db.actor }),
  );
  // Written after the database: the directory exists now, and a directory in use has already failed.
  const tokenFile = (await ensureTokenFile(ctx.path)).path;
  if (ctx.json) {
    await ctx.out.line(JSON.stringify({ path: ctx.path, created, storage, actor, tokenFile }));
  } else {
    await ctx.out.line(
      created ? `Created a new database in ${ctx.path}` : `A database is already in ${ctx.path}`,
    );
    await ctx.out.line(`storage: ${storage}`);
    await ctx.out.line(`actor:   ${actor}`);
    await ctx.out.line(`token:   ${tokenFile} (for lattice serve; other commands read it with --path)`);
  }
  return EXIT_OK;
}

async function put(ctx: Context, soul: string, text: string): Promise<number> {
  checkArgument("put", "SOUL", () => checkSoul(soul));
  const data = parseJsonArgument("put", "JSON", text) as Record<string, unknown>;
  // Validate fully before opening anything, so that a bad argument is a usage error.
  checkArgument("put", "JSON", () => flatten(soul, data));
  requireDatabase(ctx);
  const result = await withDatabase(ctx, (db) => db.put(soul, data));
  await ctx.out.line(
    ctx.json
      ? JSON.stringify({ soul: result.soul, state: result.state })
      : `Stored ${result.soul} at state ${result.state}`,
  );
  return EXIT_OK;
}

async function get(ctx: Context, soul: string): Promise<number> {
  checkArgument("get", "SOUL", () => checkSoul(soul));
  requireDatabase(ctx);
  const data = await withDatabase(ctx, (db) => db.get(soul));
  if (data === undefined) throw new CliError(`Node ${JSON.stringify(soul)} not found.`, EXIT_NOT_FOUND);
  await ctx.out.line(JSON.stringify(toJson(data), null, ctx.json ? undefined : 2));
  return EXIT_OK;
}

async function del(ctx: Context, soul: string, field: string | undefined): Promise<number> {
  checkArgument("delete", "SOUL", () => checkSoul(soul));
  if (field !== undefined) checkArgument("delete", "FIELD", () => checkField(field));
  requireDatabase(ctx);
  const result = await withDatabase(ctx, async (db) => {
    const data = await db.get(soul);
    if (data === undefined) throw new CliError(`Node ${JSON.stringify(soul)} not found.`, EXIT_NOT_FOUND);
    if (field !== undefined && !Object.hasOwn(data, field)) {
      throw new CliError(
        `Node ${JSON.stringify(soul)} has no field ${JSON.stringify(field)}.`,
        EXIT_NOT_FOUND,
      );
    }
    return await db.delete(soul, field);
  });
  if (ctx.json) {
    await ctx.out.line(JSON.stringify({ soul, field: field ?? null, state: result.state }));
  } else {
    const what = field === undefined ? soul : `field ${field} of ${soul}`;
    await ctx.out.line(`Deleted ${what} at state ${result.state}`);
  }
  return EXIT_OK;
}

async function list(ctx: Context, prefix: string | undefined, limit: number | undefined): Promise<number> {
  requireDatabase(ctx);
  await withDatabase(ctx, async (db) => {
    for await (const { soul, data } of db.list({ prefix, limit })) {
      await ctx.out.line(ctx.json ? JSON.stringify({ soul, data: toJson(data) }) : soul);
    }
  });
  return EXIT_OK;
}

async function query(ctx: Context, text: string): Promise<number> {
  const q = parseJsonArgument("query", "JSON", text) as Parameters<Database["query"]>[0];
  requireDatabase(ctx);
  const results = await withDatabase(ctx, async (db) => {
    try {
      return await db.query(q);
    } catch (e) {
      // db.query checks the whole query before it reads anything.
      if (isValidationError(e)) {
        throw new UsageError(`argument JSON is not a valid query: ${e.message}`, "query");
      }
      throw e;
    }
  });
  for (const { soul, data } of results) {
    await ctx.out.line(
      ctx.json ? JSON.stringify({ soul, data: toJson(data) }) : `${soul}\t${JSON.stringify(toJson(data))}`,
    );
  }
  return EXIT_OK;
}

async function status(ctx: Context): Promise<number> {
  if (ctx.url !== undefined) return await remoteStatus(ctx);
  requireDatabase(ctx);
  const s = await withLocalDatabase(ctx, async (db) => {
    const nodes = await db.countNodes();
    return {
      path: ctx.path,
      storage: db.storage,
      kernels: db.kernels.name,
      hashBackend: db.kernels.hashBackend,
      actor: db.actor,
      version: VERSION,
      nodes,
    };
  });
  if (ctx.json) {
    await ctx.out.line(JSON.stringify(s));
  } else {
    await ctx.out.line(`path:     ${s.path}`);
    await ctx.out.line(`storage:  ${s.storage}`);
    await ctx.out.line(`kernels:  ${s.kernels} (hash: ${s.hashBackend})`);
    await ctx.out.line(`actor:    ${s.actor}`);
    await ctx.out.line(`version:  ${s.version}`);
    await ctx.out.line(`nodes:    ${s.nodes}`);
  }
  return EXIT_OK;
}

/** Opens the database at `ctx.path` (never a remote one), runs `use`, and closes it. */
async function withLocalDatabase<T>(ctx: Context, use: (db: Database) => Promise<T>): Promise<T> {
  const db = await openDatabase(ctx);
  try {
    return await use(db);
  } finally {
    await db.close();
  }
}

async function withNode<T>(ctx: Context, use: (node: RemoteDatabase) => Promise<T>): Promise<T> {
  const node = connect(ctx.url as string, { token: ctx.token });
  try {
    return await use(node);
  } finally {
    await node.close();
  }
}

async function remoteStatus(ctx: Context): Promise<number> {
  const s = await withNode(ctx, (node) => node.status());
  if (ctx.json) {
    await ctx.out.line(JSON.stringify({ url: ctx.url, ...s }));
  } else {
    await ctx.out.line(`url:      ${ctx.url}`);
    await ctx.out.line(`peer id:  ${s.peerId ?? "-"}`);
    await ctx.out.line(`space:    ${s.space}`);
    await ctx.out.line(`peers:    ${s.peers}`);
    await ctx.out.line(`storage:  ${s.storage}`);
    await ctx.out.line(`kernels:  ${s.kernels}`);
    await ctx.out.line(`version:  ${s.version}`);
    await ctx.out.line(`nodes:    ${s.nodes}`);
    for (const a of s.addrs) await ctx.out.line(`address:  ${a}`);
  }
  return EXIT_OK;
}

async function peers(ctx: Context): Promise<number> {
  const list = await withNode(ctx, (node) => node.peers());
  for (const peer of list) {
    await ctx.out.line(ctx.json ? JSON.stringify(peer) : [peer.id, ...peer.addrs].join(" "));
  }
  return EXIT_OK;
}

/** Runs a node until SIGINT/SIGTERM (see net/serve.ts). */
async function serveCommand(ctx: Context, p: Parsed): Promise<number> {
  const http = (p.flags.get("http") as string | undefined) ?? DEFAULT_HTTP;
  try {
    parseHostPort(http);
  } catch (e) {
    throw new UsageError((e as Error).message, "serve");
  }
  const replication = p.flags.has("replication")
    ? parseCount("serve", "replication", p.flags.get("replication") as string)
    : undefined;
  const memory = p.flags.has("memory");
  const corsOrigins = (p.flags.get("cors-origin") as string[] | undefined) ?? [];
  const hosts = (p.flags.get("allow-host") as string[] | undefined) ?? [];
  for (const o of corsOrigins) checkArgument("serve", "--cors-origin", () => checkCorsOrigin(o));
  for (const h of hosts) checkArgument("serve", "--allow-host", () => checkServedHost(h));
  let node: Awaited<ReturnType<typeof serve>>;
  try {
    node = await serve({
      path: memory ? undefined : ctx.path,
      memory,
      http,
      json: ctx.json,
      space: p.flags.get("space") as string | undefined,
      listen: (p.flags.get("listen") as string[] | undefined) ?? [],
      bootstrap: (p.flags.get("bootstrap") as string[] | undefined) ?? [],
      replication,
      mdns: p.flags.has("mdns"),
      startNetwork,
      stdout: (line) => ctx.host.stdout(line + "\n"),
      token: p.flags.get("token") as string | undefined,
      auth: !p.flags.has("no-auth"),
      corsOrigins,
      hosts,
    });
  } catch (e) {
    if (isValidationError(e)) throw new CliError(`Cannot start the node: ${e.message}`, EXIT_ERROR);
    throw e; // LockedError, EADDRINUSE, …: report() words them
  }
  await node.done;
  return EXIT_OK;
}

/**
 * Runs scripts/bench.ts in a child process of this runtime (Deno with
 * `--v8-flags=--expose-gc`, as `deno task bench` does; Bun as `bun
 * scripts/bench.ts`), passing the arguments after `bench` through and
 * returning its exit code. The suites and their peer packages (gun, yjs,
 * mitata) live only in a checkout of the repository, never in an installed
 * package or a compiled binary: there it says so and where to run them.
 */
async function bench(p: Parsed, out: Printer, help: boolean): Promise<number> {
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

/** The path of scripts/bench.ts beside this file in a checkout, or `undefined` elsewhere. */
function benchScript(): string | undefined {
  const url = new URL("./scripts/bench.ts", import.meta.url);
  if (url.protocol !== "file:") return undefined;
  const path = fileURLToPath(url);
  try {
    return statSync(path).isFile() && statSync(new URL("./bench/", import.meta.url)).isDirectory()
      ? path
      : undefined;
  } catch {
    return undefined;
  }
}

/** Prints `e` as one line on stderr and returns the exit code. */
async function report(e: unknown, host: CliHost): Promise<number> {
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
  } else if (["ConnectionError", "RemoteError", "TimeoutError", "DiskFullError"].includes(err.name)) {
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

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  process.exit(code);
}
