// @server-only: spawns the CLI
/**
 * The `lattice` CLI, run as a child process with the runtime running this
 * test (`deno run -A cli.ts …` under Deno, `bun cli.ts …` under Bun): the
 * output of every command, `--json` shapes, exit codes (0/1/2/3), help,
 * errors as one line on stderr, bytes as `$bytes`, and a directory held by
 * another process.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { open } from "../mod.ts";
import { VERSION } from "../version.ts";
import { startServe } from "./_serve.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI_FILE = join(ROOT, "cli.ts");
const IS_DENO = typeof process.versions.deno === "string";
const CLI = IS_DENO ? [process.execPath, "run", "-A", CLI_FILE] : [process.execPath, CLI_FILE];
/** Bun's test runner gives each test 5 s by default; a test here spawns the CLI many times. */
const SLOW = { timeout: 120_000 };

const COMMANDS = [
  "init",
  "put",
  "get",
  "delete",
  "list",
  "query",
  "status",
  "serve",
  "search",
  "index",
  "identity",
  "peers",
  "bench",
  "help",
];

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
}

/** Runs the CLI with `args`; LATTICE_* variables of this process are not passed on. */
function cli(args: readonly string[], options: RunOptions = {}): Promise<Result> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("LATTICE_")) env[k] = v;
  }
  Object.assign(env, options.env);
  return new Promise((resolve, reject) => {
    const child = spawn(CLI[0], [...CLI.slice(1), ...args], { cwd: options.cwd ?? ROOT, env });
    let stdout = "", stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => stdout += s);
    child.stderr.setEncoding("utf8").on("data", (s: string) => stderr += s);
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs `fn` over `items`, at most `limit` at a time, keeping the order of results. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

const show = (args: readonly string[], r: Result): string =>
  `lattice ${args.join(" ")} → exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

/** Asserts success with nothing on stderr. */
function assertOk(args: readonly string[], r: Result): void {
  assert.equal(r.code, 0, show(args, r));
  assert.equal(r.stderr, "", show(args, r));
}

/** Asserts exit `code` with nothing on stdout and exactly one line, no stack trace, on stderr. */
function assertFails(args: readonly string[], r: Result, code: number, pattern?: RegExp): void {
  assert.equal(r.code, code, show(args, r));
  assert.equal(r.stdout, "", show(args, r));
  assert.match(r.stderr, /^lattice[^\n]*: [^\n]+\n$/, `one line on stderr: ${show(args, r)}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `no stack trace: ${show(args, r)}`);
  if (pattern) assert.match(r.stderr, pattern, show(args, r));
}

/** Parses stdout as JSON lines: one value per line, every line. */
function jsonLines(r: Result): unknown[] {
  assert.ok(r.stdout === "" || r.stdout.endsWith("\n"), `stdout ends with a newline: ${r.stdout}`);
  return r.stdout.split("\n").slice(0, -1).map((line) => JSON.parse(line));
}

/** The single JSON value on stdout. */
function jsonValue(r: Result): Record<string, unknown> {
  const values = jsonLines(r);
  assert.equal(values.length, 1, `one JSON line: ${r.stdout}`);
  return values[0] as Record<string, unknown>;
}

const HEX16 = /^[0-9a-f]{16}$/;
const ALL_BYTES_B64 = btoa(String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i)));

describe("lattice CLI", () => {
  let tmp: string;
  let dir: string;
  /** Runs the CLI on the test's database directory. */
  const db = (...args: string[]): Promise<Result> => cli([...args, "--path", dir]);

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), "lattice-cli-"));
    dir = join(tmp, "db");
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it("prints the version", SLOW, async () => {
    const r = await cli(["--version"]);
    assertOk(["--version"], r);
    assert.equal(r.stdout, `lattice ${VERSION}\n`);
    assert.deepEqual(jsonValue(await cli(["--version", "--json"])), { version: VERSION });
  });

  it("shows help: the command list, and each command's usage with help, --help and -h", SLOW, async () => {
    for (const args of [["help"], ["--help"], ["-h"]]) {
      const r = await cli(args);
      assertOk(args, r);
      assert.match(r.stdout, /^Lattice [\d.]+: /);
      for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^  ${c}\\b`, "m"), `${c} listed`);
      assert.match(r.stdout, /\$bytes/);
      assert.match(r.stdout, /Exit codes: 0 ok, 1 error, 2 usage error, 3 not found/);
    }
    // `help help` and `help --help` show the command list above.
    const commands = COMMANDS.filter((c) => c !== "help");
    const forms = [
      ...commands.flatMap((c) => [["help", c], [c, "--help"]]),
      ...["get", "list", "serve"].map((c) => [c, "-h"]),
      ["--path", "x", "put", "--help"],
    ];
    const results = await mapLimit(forms, 4, (args) => cli(args));
    forms.forEach((args, i) => {
      const r = results[i];
      assertOk(args, r);
      const c = args.find((a) => commands.includes(a));
      assert.match(r.stdout, new RegExp(`^Usage: lattice ${c}\\b`), show(args, r));
      assert.match(r.stdout, /--path DIR/, show(args, r));
    });
    assert.match((await cli(["help", "help"])).stdout, /^Lattice /);
    assertFails(["help", "nope"], await cli(["help", "nope"]), 2, /unknown command "nope"/);
  });

  it("refuses to work on a directory without a database, except init", SLOW, async () => {
    const runs = [
      ["get", "a"],
      ["put", "a", '{"x":1}'],
      ["delete", "a"],
      ["list"],
      ["query", '{"from":"a"}'],
      [
        "status",
      ],
    ];
    for (const args of runs) assertFails(args, await db(...args), 1, /No database at .*lattice init/);
    assert.equal(existsSync(dir), false, "nothing was created");
  });

  it("init creates the directory once and reports path, storage and actor", SLOW, async () => {
    const r1 = await db("init");
    assertOk(["init"], r1);
    const [first, storage, actor] = r1.stdout.trimEnd().split("\n");
    assert.equal(first, `Created a new database in ${dir}`);
    assert.match(storage, /^storage: sqlite/);
    assert.match(actor, /^actor: +[0-9a-f]{16}$/);
    const r2 = await db("init", "--json");
    assertOk(["init", "--json"], r2);
    const info = jsonValue(r2);
    assert.deepEqual(Object.keys(info), [
      "path",
      "created",
      "storage",
      "actor",
      "tokenFile",
      "identity",
      "encrypted",
    ]);
    // The directory's key: its public id, in the clear (no LATTICE_PASSPHRASE here).
    assert.match(info.identity as string, /^[0-9a-f]{64}$/);
    assert.equal(info.encrypted, false);
    assert.match(r1.stdout, new RegExp(`^identity: ${info.identity}$`, "m"));
    assert.equal(statSync(join(dir, "identity.json")).mode & 0o777, 0o600);
    assert.equal(info.path, dir);
    // The HTTP token for a node serving this directory, readable by its owner only, kept by re-runs.
    assert.equal(info.tokenFile, join(dir, "http-token"));
    assert.match(r1.stdout, new RegExp(`^token: +${join(dir, "http-token")}`, "m"));
    const token = readFileSync(join(dir, "http-token"), "utf8");
    assert.match(token, /^[A-Za-z0-9_-]{43}\n$/);
    assert.equal(statSync(join(dir, "http-token")).mode & 0o777, 0o600);
    assert.equal(info.created, false);
    assert.equal(info.storage, storage.slice("storage: ".length));
    assert.equal(info.actor, actor.split(/ +/)[1], "the actor id is kept");
    assert.match((await db("init")).stdout, /^A database is already in /);
    assert.equal(readFileSync(join(dir, "http-token"), "utf8"), token);
    const nested = join(tmp, "a", "b", "c");
    const r3 = await cli(["init", "--json", "--path", nested]);
    assertOk(["init"], r3);
    assert.equal(jsonValue(r3).created, true);
    assert.ok(existsSync(nested));
  });

  it(
    "put stores objects (nested objects become child nodes, links stay links); get prints them",
    SLOW,
    async () => {
      const data = {
        name: "Alice",
        age: 30,
        admin: false,
        pet: { name: "Rex", kind: "dog" },
        friend: { "#": "bob" },
      };
      const r = await db("put", "alice", JSON.stringify(data));
      assertOk(["put"], r);
      assert.match(r.stdout, /^Stored alice at state [0-9a-f]{16}\n$/);
      const rb = await db("put", "bob", '{"name":"Bob","age":41,"friend":{"#":"alice"}}', "--json");
      assertOk(["put", "--json"], rb);
      const written = jsonValue(rb);
      assert.deepEqual(Object.keys(written), ["soul", "state"]);
      assert.equal(written.soul, "bob");
      assert.match(written.state as string, HEX16);

      const g = await db("get", "alice");
      assertOk(["get"], g);
      const expected = {
        admin: false,
        age: 30,
        friend: { "#": "bob" },
        name: "Alice",
        pet: { "#": "alice/pet" },
      };
      assert.deepEqual(JSON.parse(g.stdout), expected);
      assert.ok(g.stdout.split("\n").length > 3, "pretty-printed without --json");
      const gj = await db("get", "alice", "--json");
      assertOk(["get", "--json"], gj);
      assert.deepEqual(jsonValue(gj), expected);
      assert.deepEqual(jsonValue(await db("get", "alice/pet", "--json")), { kind: "dog", name: "Rex" });

      // A later put merges fields; null deletes one.
      assertOk(["put"], await db("put", "alice", '{"age":31,"admin":null}'));
      const { admin: _, ...rest } = expected;
      assert.deepEqual(jsonValue(await db("get", "alice", "--json")), { ...rest, age: 31 });
    },
  );

  it("get of a missing node exits 3 with one line on stderr", SLOW, async () => {
    for (const json of [[], ["--json"]]) {
      assertFails(["get", "nobody"], await db("get", "nobody", ...json), 3, /Node "nobody" not found/);
    }
  });

  it("bytes round-trip as {$bytes: base64}", SLOW, async () => {
    const put = await db(
      "put",
      "blob",
      JSON.stringify({ all: { $bytes: ALL_BYTES_B64 }, empty: { $bytes: "" } }),
    );
    assertOk(["put"], put);
    const got = jsonValue(await db("get", "blob", "--json"));
    assert.deepEqual(got, { all: { $bytes: ALL_BYTES_B64 }, empty: { $bytes: "" } });
    const q = await db(
      "query",
      JSON.stringify({ from: ["blob", "alice"], where: { all: { $bytes: ALL_BYTES_B64 } } }),
      "--json",
    );
    assertOk(["query"], q);
    assert.deepEqual(jsonLines(q).map((e) => (e as { soul: string }).soul), ["blob"]);
    const bad = ["put", "blob", '{"x":{"$bytes":"not base64!"}}'];
    assertFails(bad, await db(...bad), 2, /lattice put: argument JSON is invalid: .*\$bytes is not base64/);
    const notString = ["put", "blob", '{"x":{"$bytes":12}}'];
    assertFails(notString, await db(...notString), 2, /\$bytes must be a base64 string/);
  });

  it("delete removes one field or the whole node; missing ones exit 3", SLOW, async () => {
    assertOk(["put"], await db("put", "carol", '{"name":"Carol","age":25,"city":"Oslo"}'));
    const r = await db("delete", "carol", "city");
    assertOk(["delete"], r);
    assert.match(r.stdout, /^Deleted field city of carol at state [0-9a-f]{16}\n$/);
    assert.deepEqual(jsonValue(await db("get", "carol", "--json")), { age: 25, name: "Carol" });
    assertFails(["delete"], await db("delete", "carol", "city"), 3, /Node "carol" has no field "city"/);
    const rj = await db("delete", "carol", "--json");
    assertOk(["delete", "--json"], rj);
    const del = jsonValue(rj);
    assert.deepEqual(Object.keys(del), ["soul", "field", "state"]);
    assert.equal(del.soul, "carol");
    assert.equal(del.field, null);
    assertFails(["get"], await db("get", "carol"), 3);
    assertFails(["delete"], await db("delete", "carol"), 3, /Node "carol" not found/);
  });

  it(
    "list prints souls in order, with --prefix and --limit; --json gives {soul, data} lines",
    SLOW,
    async () => {
      for (const s of ["t/b", "t/a", "t/c", "u/a"]) assertOk(["put"], await db("put", s, `{"n":"${s}"}`));
      const all = await db("list");
      assertOk(["list"], all);
      const souls = all.stdout.trimEnd().split("\n");
      assert.deepEqual(souls, [...souls].sort(), "in soul order");
      for (const s of ["alice", "alice/pet", "bob", "blob", "t/a", "t/b", "t/c", "u/a"]) {
        assert.ok(
          souls.includes(s),
          s,
        );
      }
      assert.ok(!souls.includes("carol"), "deleted nodes are not listed");
      assert.equal((await db("list", "--prefix", "t/")).stdout, "t/a\nt/b\nt/c\n");
      assert.equal((await db("list", "--prefix=t/", "--limit=2")).stdout, "t/a\nt/b\n");
      assert.equal((await db("list", "--limit", "0")).stdout, "");
      const j = await db("list", "--prefix", "t/", "--json");
      assertOk(["list", "--json"], j);
      assert.deepEqual(jsonLines(j), [
        { soul: "t/a", data: { n: "t/a" } },
        { soul: "t/b", data: { n: "t/b" } },
        { soul: "t/c", data: { n: "t/c" } },
      ]);
    },
  );

  it("query follows links and filters; --json gives {soul, data} lines", SLOW, async () => {
    const q = { from: "alice", path: ["friend", "friend"] };
    const r = await db("query", JSON.stringify(q));
    assertOk(["query"], r);
    assert.match(r.stdout, /^alice\t\{.*"name":"Alice".*\}\n$/);
    const j = await db(
      "query",
      JSON.stringify({ from: ["alice", "bob"], where: { age: { gt: 35 } } }),
      "--json",
    );
    assertOk(["query", "--json"], j);
    assert.deepEqual(jsonLines(j), [{
      soul: "bob",
      data: { age: 41, friend: { "#": "alice" }, name: "Bob" },
    }]);
    const pets = await db("query", '{"from":"alice","path":["*"],"where":{"kind":"dog"}}', "--json");
    assert.deepEqual(jsonLines(pets), [{ soul: "alice/pet", data: { kind: "dog", name: "Rex" } }]);
    assert.equal((await db("query", '{"from":"nobody"}')).stdout, "", "no results, no output");
  });

  it("status reports path, storage, kernels, actor, version, node count and deferred ops", SLOW, async () => {
    const listed = (await db("list")).stdout.trimEnd().split("\n").length;
    const r = await db("status");
    assertOk(["status"], r);
    for (const key of ["path", "storage", "kernels", "actor", "version", "nodes"]) {
      assert.match(r.stdout, new RegExp(`^${key}: +\\S`, "m"), key);
    }
    assert.match(r.stdout, /^deferred: +0 waiting; 0 refused from peers$/m);
    assert.match(r.stdout, new RegExp(`^nodes: +${listed}$`, "m"));
    const j = await db("status", "--json");
    assertOk(["status", "--json"], j);
    const s = jsonValue(j);
    assert.deepEqual(Object.keys(s), [
      "path",
      "storage",
      "kernels",
      "hashBackend",
      "actor",
      "version",
      "nodes",
      "deferred",
      "identity",
    ]);
    assert.deepEqual(s.deferred, { count: 0, next: null, refused: 0 });
    assert.match(s.identity as string, /^[0-9a-f]{64}$/);
    assert.equal(s.path, dir);
    assert.match(s.storage as string, /^sqlite/);
    assert.match(s.kernels as string, /^(wasm-simd|wasm|js)$/);
    assert.match(s.hashBackend as string, /^(native|wasm|js)$/);
    assert.match(s.actor as string, HEX16);
    assert.equal(s.version, VERSION);
    assert.equal(s.nodes, listed);
    const js = jsonValue(await cli(["status", "--json", "--path", dir], { env: { LATTICE_KERNELS: "js" } }));
    assert.equal(js.kernels, "js");
    const bad = await cli(["status", "--path", dir], { env: { LATTICE_KERNELS: "fast" } });
    assertFails(["status"], bad, 1, /LATTICE_KERNELS must be/);
  });

  it("--path defaults to $LATTICE_PATH, then ./.lattice", SLOW, async () => {
    const r = await cli(["status", "--json"], { env: { LATTICE_PATH: dir } });
    assertOk(["status"], r);
    assert.equal(jsonValue(r).path, dir);
    const cwd = join(tmp, "cwd");
    mkdirSync(cwd);
    const i = await cli(["init", "--json"], { cwd });
    assertOk(["init"], i);
    assert.equal(jsonValue(i).path, join(cwd, ".lattice"));
    assert.ok(existsSync(join(cwd, ".lattice")));
  });

  it(
    "takes --flag=value, options before the command, and -- before arguments that start with -",
    SLOW,
    async () => {
      assertOk(["put"], await cli([`--path=${dir}`, "--json", "put", "--", "-dash", '{"a":1}']));
      assert.deepEqual(jsonValue(await cli(["--json", "get", `--path=${dir}`, "--", "-dash"])), { a: 1 });
      assertFails(["get", "-dash"], await db("get", "-dash"), 2, /unknown option -dash.*"--"/);
    },
  );

  it("usage errors exit 2 with one line that names the problem", SLOW, async () => {
    const cases: [string[], RegExp][] = [
      [[], /^lattice: missing command/],
      [["frobnicate"], /unknown command "frobnicate"/],
      [["--bogus", "status"], /unknown option --bogus/],
      [["get"], /^lattice get: missing argument SOUL; see "lattice help get"/],
      [["put", "a"], /missing argument JSON/],
      [["get", "a", "b"], /unexpected extra argument "b"/],
      [["status", "x"], /unexpected extra argument "x"/],
      [["get", ""], /argument SOUL is invalid: A soul must not be empty/],
      [["delete", "a", "__proto__"], /argument FIELD is invalid/],
      [["put", "a", "{x"], /argument JSON is not valid JSON/],
      [["put", "a", "[1]"], /argument JSON must be a JSON object, got an array/],
      [["put", "a", "42"], /argument JSON must be a JSON object, got a number/],
      [["put", "a", "null"], /argument JSON must be a JSON object, got null/],
      [["put", "a", '{"x":[1]}'], /argument JSON is invalid: .*cannot store an array/],
      [["put", "a", '{"x":1e999}'], /argument JSON is invalid: .*finite/],
      [["query", "{oops"], /lattice query: argument JSON is not valid JSON/],
      [["list", "--limit", "x"], /--limit must be a non-negative integer, got "x"/],
      [["list", "--limit", "-1"], /--limit must be a non-negative integer/],
      [["list", "--limit"], /option --limit needs a value/],
      [["get", "a", "--prefix", "p"], /option --prefix does not apply to get/],
      [["status", "--path"], /option --path needs a value/],
      [["list", "--prefix", "--json"], /option --prefix needs a value \(write --prefix=VALUE/],
      [["status", "--path="], /option --path needs a value/],
      [["status", "--json=yes"], /option --json takes no value/],
      [["status", "--path", "a", "--path", "b"], /option --path is given more than once/],
      [["status", "-x"], /unknown option -x/],
    ];
    const results = await mapLimit(cases, 4, ([args]) => db(...args));
    cases.forEach(([args, pattern], i) => assertFails(args, results[i], 2, pattern));
    // A query is checked by the database, so these open it: one at a time.
    const queries: [string[], RegExp][] = [
      [["query", "{}"], /argument JSON is not a valid query: query.from/],
      [["query", '{"from":"a","where":{"x":{"near":1}}}'], /Unknown condition "near"/],
    ];
    for (const [args, pattern] of queries) assertFails(args, await db(...args), 2, pattern);
  });

  it("refusals exit with one sentence", SLOW, async () => {
    assertFails(["peers"], await db("peers"), 2, /peers asks a running node: give its --url/);
    assertFails(
      ["init", "--url"],
      await db("init", "--url", "http://127.0.0.1:1"),
      2,
      /not on a running node/,
    );
    assertFails(["serve", "--http"], await db("serve", "--http", "nope"), 2, /--http must be HOST:PORT/);
    assertFails(["--url"], await db("get", "alice", "--url", "nope"), 2, /--url must be an http:\/\/ URL/);
    assertFails(
      ["--url"],
      await db("get", "alice", "--url", "http://127.0.0.1:1"),
      1,
      /Cannot reach the Lattice node at http:\/\/127\.0\.0\.1:1/,
    );
  });

  it("serve runs a node that commands reach with --url, and stops on SIGTERM", SLOW, async () => {
    const served = join(tmp, "served");
    const node = await startServe(["serve", "--path", served, "--http", "127.0.0.1:0"], { readyMs: 30_000 });
    try {
      // ready <http-url> <peer-id> <multiaddr>...: the node listens for peers on loopback by default.
      const m = /^ready (http:\/\/127\.0\.0\.1:\d+) (12D3Koo\w+)( \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\2)+\n$/
        .exec(node.stdout());
      assert.ok(m, node.stdout());
      const url = m[1];
      // The node wrote its token into its directory: --path gives it to commands sent with --url.
      const token = readFileSync(join(served, "http-token"), "utf8").trim();
      const viaUrl = (...args: string[]) => cli([...args, "--url", url, "--path", served]);
      assertOk(["put"], await viaUrl("put", "a b", '{"x":1,"raw":{"$bytes":"AAH/"}}'));
      const got = await viaUrl("get", "a b", "--json");
      assertOk(["get"], got);
      assert.deepEqual(JSON.parse(got.stdout), { raw: { $bytes: "AAH/" }, x: 1 });
      assertFails(["get"], await viaUrl("get", "nobody"), 3);
      const listed = await viaUrl("list", "--json");
      assert.deepEqual(JSON.parse(listed.stdout), { soul: "a b", data: { raw: { $bytes: "AAH/" }, x: 1 } });
      const status = JSON.parse((await viaUrl("status", "--json")).stdout);
      assert.equal(status.nodes, 1);
      assert.equal(status.peerId, m[2]);
      assertOk(["peers"], await viaUrl("peers"));
      assertFails(["query"], await viaUrl("query", '{"from":"a b","where":{"x":{"near":1}}}'), 2, /near/);
      assertOk(["delete"], await viaUrl("delete", "a b", "x"));
      assertFails(["delete"], await viaUrl("delete", "a b", "x"), 3);
      // Without the token a write is refused and the error says where to get it; reads from this
      // machine need none. Run from tmp: no ./.lattice there to take a token from.
      const bare = (...args: string[]) => cli([...args, "--url", url], { cwd: tmp });
      assertFails(["put"], await bare("put", "t", "{}"), 1, /token.*--token, LATTICE_TOKEN, or --path/);
      assertOk(["get"], await bare("get", "a b"));
      assertOk(["put", "--token"], await bare("put", "t1", "{}", "--token", token));
      assertOk(
        ["put"],
        await cli(["put", "t2", "{}", "--url", url], { cwd: tmp, env: { LATTICE_TOKEN: token } }),
      );
      // --token comes first, then LATTICE_TOKEN, then --path.
      assertFails(
        ["put", "--token"],
        await cli(["put", "t3", "{}", "--url", url, "--path", served, "--token", "wrong"], {
          env: { LATTICE_TOKEN: token },
        }),
        1,
        /not this node's/,
      );
      assertFails(
        ["put"],
        await cli(["put", "t3", "{}", "--url", url, "--path", served], { env: { LATTICE_TOKEN: "wrong" } }),
        1,
        /not this node's/,
      );
      assertFails(
        ["get", "--token"],
        await cli(["get", "t1", "--token", token, "--path", served]),
        2,
        /--url/,
      );
      // The directory is the node's while it runs.
      assertFails(
        ["get"],
        await cli(["get", "a b", "--path", served]),
        1,
        /in use by process .*lattice serve/,
      );
    } finally {
      await node.stop();
    }
    assert.equal(await node.exited, 0, node.stderr());
    assert.equal(node.stderr(), "");
    const after = await cli(["get", "a b", "--path", served, "--json"]);
    assertOk(["get"], after);
    assert.deepEqual(JSON.parse(after.stdout), { raw: { $bytes: "AAH/" } });
  });

  it("serve --json gives the token; --no-auth opts out; --cors-origin grants one origin", SLOW, async () => {
    const node = await startServe(["serve", "--memory", "--http", "127.0.0.1:0", "--json"], {
      readyMs: 30_000,
    });
    try {
      const { http, token } = node.ready;
      assert.match(token ?? "", /^[A-Za-z0-9_-]{43}$/);
      assertFails(["put"], await cli(["put", "m", "{}", "--url", http], { cwd: tmp }), 1, /token/);
      assertOk(
        ["put", "--token"],
        await cli(["put", "m", "{}", "--url", http, "--token", token!], { cwd: tmp }),
      );
    } finally {
      await node.stop();
    }
    assert.equal(node.stderr(), "");
    const app = "http://app.test:5173";
    const open = await startServe(
      ["serve", "--memory", "--http", "127.0.0.1:0", "--json", "--no-auth", "--cors-origin", app],
      { readyMs: 30_000 },
    );
    try {
      const { http, token } = open.ready;
      assert.equal(token, null);
      assertOk(["put"], await cli(["put", "m", "{}", "--url", http], { cwd: tmp }));
      const pre = await fetch(http + "/v1/nodes/m", {
        method: "OPTIONS",
        headers: { origin: app, "access-control-request-method": "PUT" },
      });
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get("access-control-allow-origin"), app);
      const other = await fetch(http + "/v1/status", { headers: { origin: "http://evil.test" } });
      await other.body?.cancel();
      assert.equal(other.status, 403);
      assert.equal(other.headers.get("access-control-allow-origin"), null);
    } finally {
      await open.stop();
    }
    assert.match(open.stderr(), /authentication is off \(--no-auth\)/);
    const args = ["serve", "--memory", "--no-auth", "--token", "x"];
    assertFails(args, await cli(args), 2, /contradict/);
    assertFails(["serve"], await cli(["serve", "--memory", "--token", "has space"]), 2, /--token is invalid/);
    assertFails(
      ["serve"],
      await cli(["serve", "--memory", "--cors-origin", "*"]),
      2,
      /--cors-origin is invalid/,
    );
    assertFails(
      ["serve"],
      await cli(["serve", "--memory", "--allow-host", "a b"]),
      2,
      /--allow-host is invalid/,
    );
  });

  it("bench runs a suite of the checkout in a child process and passes its exit code on", SLOW, async () => {
    const usage = await cli(["bench"]);
    assert.equal(usage.code, 2, show(["bench"], usage)); // the runner's own usage error: no suite given
    assert.match(usage.stderr, /Missing the suite to run[\s\S]*Suites: .*kernels/);
    const r = await cli(["bench", "kernels", "--json", "--filter", "^dot 384$"]);
    assert.equal(r.code, 0, show(["bench", "kernels"], r)); // stderr may carry a note on a busy machine
    const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(rows.map((x) => [x.suite, x.case]), rows.map(() => ["kernels", "dot 384"]));
    assert.deepEqual(rows.map((x) => x.impl).sort(), ["js", "wasm", "wasm-scalar"]);
    assert.ok(rows.every((x) => x.ns > 0), r.stdout);
  });

  it("commands run at the same time on one directory wait for each other", SLOW, async () => {
    const souls = ["p/1", "p/2", "p/3", "p/4"];
    const results = await Promise.all(souls.map((s) => db("put", s, `{"s":"${s}"}`)));
    results.forEach((r) => assertOk(["put"], r));
    assert.equal((await db("list", "--prefix", "p/")).stdout, souls.join("\n") + "\n");
  });

  it("says who holds a directory in use by another process, and mentions --url", SLOW, async () => {
    const holder = await open({ path: dir });
    try {
      const started = Date.now();
      const r = await db("get", "alice");
      assert.ok(Date.now() - started >= 1500, "waited for the holder before giving up");
      assertFails(["get"], r, 1, new RegExp(`in use by process ${process.pid}\\b`));
      assert.match(r.stderr, /--url/);
      assertFails(["init"], await db("init"), 1, /in use by process/);
    } finally {
      await holder.close();
    }
    assertOk(["get"], await db("get", "alice"));
  });

  it(
    "reports unexpected errors in one line with a LATTICE_DEBUG hint, and the stack with it",
    SLOW,
    async () => {
      const broken = join(tmp, "broken");
      mkdirSync(broken);
      writeFileSync(
        join(broken, "lattice.db"),
        "this is not a SQLite database, not even close to one\n".repeat(20),
      );
      const r = await cli(["status", "--path", broken]);
      assertFails(["status"], r, 1, /unexpected error: .*set LATTICE_DEBUG=1 to see the stack trace/);
      const d = await cli(["status", "--path", broken], { env: { LATTICE_DEBUG: "1" } });
      assert.equal(d.code, 1);
      assert.match(d.stderr, /^\s+at /m, "stack trace shown with LATTICE_DEBUG=1");
      const file = join(tmp, "a-file");
      writeFileSync(file, "x");
      for (const c of ["init", "status"]) {
        assertFails([c], await cli([c, "--path", file]), 1, /is a file, not a database directory/);
      }
    },
  );

  it("writes long listings in full", SLOW, async () => {
    const big = join(tmp, "big");
    const handle = await open({ path: big });
    const n = 3000;
    await Promise.all(Array.from({ length: n }, (_, i) => handle.put(`n${i}`, { i, pad: "x".repeat(100) })));
    await handle.close();
    const r = await cli(["list", "--json", "--path", big]);
    assertOk(["list"], r);
    const lines = jsonLines(r) as { soul: string; data: { i: number } }[];
    assert.equal(lines.length, n);
    assert.deepEqual(new Set(lines.map((l) => l.data.i)).size, n);
    assert.equal(jsonValue(await cli(["status", "--json", "--path", big])).nodes, n);
  });
});
