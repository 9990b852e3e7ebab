// @server-only: reads docs/API.md and the sources from the checkout, and listens on 127.0.0.1
/**
 * docs/API.md against the code, so the reference cannot drift from what
 * Lattice does: every CLI command and flag of cli/commands.ts's tables (and every
 * option its help texts name), every route `GET /v1` of a running API lists,
 * every HTTP error code of net/http.ts, every export of mod.ts, and the wire
 * identifiers of docs/PROTOCOL.md. Each check is a function of the doc's
 * text, and each is also run on the doc with one line removed, to show that
 * it notices.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import * as lattice from "../mod.ts";
import { type CliHost, main } from "../cli.ts";
import { type HttpApi, startHttpApi } from "../net/http.ts";
import { SYNC_PROTOCOL } from "../core/sync/protocol.ts";

const read = (path: string): string => readFileSync(new URL(`../${path}`, import.meta.url), "utf8");
const API_DOC = read("docs/API.md");

// ---------------------------------------------------------------- the doc's parts

/** The text of the section whose heading line starts with `heading`, up to the next heading of its level or above. */
function section(doc: string, heading: string): string | undefined {
  const lines = doc.split("\n");
  const start = lines.findIndex((l) => l.startsWith(heading));
  if (start < 0) return undefined;
  const level = /^#+/.exec(heading)?.[0].length ?? 0;
  let end = start + 1;
  while (end < lines.length && !(/^#+ /.test(lines[end]) && /^#+/.exec(lines[end])![0].length <= level)) {
    end++;
  }
  return lines.slice(start, end).join("\n");
}

/** Whether `text` names option `--name` (not as the prefix of a longer one). */
const namesFlag = (text: string, name: string): boolean =>
  new RegExp(`(?<![\\w-])--${name.replace(/[-]/g, "\\-")}(?![\\w-])`).test(text);

// ---------------------------------------------------------------- the CLI's tables, from cli/commands.ts

interface CommandRow {
  readonly name: string;
  readonly flags: readonly string[];
  readonly unavailable: boolean;
}

/** The body of `const NAME … = {` or `[` up to its closing line, in cli/commands.ts. */
function block(source: string, name: string, open: "{" | "["): string {
  const start = source.indexOf(`const ${name}`);
  assert.ok(start >= 0, `cli/commands.ts has no const ${name}`);
  const close = open === "{" ? "\n};" : "];";
  const end = source.indexOf(close, start);
  assert.ok(end > start, `cannot find the end of ${name} in cli/commands.ts`);
  return source.slice(start, end);
}

const strings = (text: string): string[] => [...text.matchAll(/"([^"]+)"/g)].map((m) => m[1]);

function cliTables(): { commands: CommandRow[]; flags: string[]; globalFlags: string[] } {
  const source = read("cli/commands.ts");
  const table = block(source, "COMMANDS", "{");
  const starts = [...table.matchAll(/^ {2}(?:"([^"]+)"|([\w-]+)): \{$/gm)];
  const commands = starts.map((m, i) => {
    const body = table.slice(m.index!, i + 1 < starts.length ? starts[i + 1].index : undefined);
    const flags = /^ {4}flags: \[([^\]]*)\]/m.exec(body);
    return {
      name: m[1] ?? m[2],
      flags: flags ? strings(flags[1]) : [],
      unavailable: /^ {4}unavailable: true,/m.test(body),
    };
  });
  const flags = [...block(source, "FLAGS", "{").matchAll(/^ {2}(?:"([^"]+)"|([\w-]+)): \{/gm)].map((m) =>
    m[1] ?? m[2]
  );
  const globalFlags = strings(block(source, "GLOBAL_FLAGS", "["));
  return { commands, flags, globalFlags };
}

/** Runs the CLI in this process and returns what it printed. */
async function cliOutput(args: string[]): Promise<{ code: number; out: string }> {
  let out = "";
  const host: CliHost = {
    env: () => undefined,
    resolvePath: (p) => p,
    pathKind: () => "missing",
    stdout: (text) => {
      out += text;
      return Promise.resolve();
    },
    stderr: (text) => {
      out += text;
      return Promise.resolve();
    },
  };
  const code = await main(args, host);
  return { code, out };
}

/** What the doc lacks of the CLI's tables. */
function cliGaps(doc: string, tables: ReturnType<typeof cliTables>): string[] {
  const gaps: string[] = [];
  for (const c of tables.commands) {
    const text = section(doc, `### \`lattice ${c.name}`);
    if (text === undefined) {
      gaps.push(`no section "### \`lattice ${c.name} …\`"`);
      continue;
    }
    for (const f of c.flags) {
      if (!namesFlag(text, f)) gaps.push(`the section of ${c.name} does not name --${f}`);
    }
    if (c.unavailable && !/not available yet/i.test(text)) {
      gaps.push(`the section of ${c.name} does not say it is not available yet`);
    }
  }
  const globals = section(doc, "### Options of every command") ?? "";
  for (const f of tables.globalFlags) {
    if (!namesFlag(globals, f)) gaps.push(`"Options of every command" does not name --${f}`);
  }
  for (const f of tables.flags) if (!namesFlag(doc, f)) gaps.push(`the doc does not name --${f}`);
  return gaps;
}

// ---------------------------------------------------------------- HTTP error codes, from net/http.ts

/** Every `[status, code]` net/http.ts and its parts (net/http/) answer with or list in the error table. */
function httpErrorCodes(): [string, string][] {
  const parts = readdirSync(new URL("../net/http/", import.meta.url)).filter((f) => f.endsWith(".ts"));
  assert.ok(parts.includes("errors.ts") && parts.includes("routes.ts"), parts.join(" "));
  const source = [read("net/http.ts"), ...parts.map((f) => read(`net/http/${f}`))].join("\n");
  const pairs = new Set<string>();
  for (const m of source.matchAll(/HttpError\(\s*(\d{3}),\s*"([a-z_]+)"/g)) pairs.add(`${m[1]} ${m[2]}`);
  for (const m of source.matchAll(/"(\d{3}) [A-Za-z ]+", "([a-z_]+)"/g)) pairs.add(`${m[1]} ${m[2]}`);
  for (const m of source.matchAll(/^ \* \| (\d{3}) \| `([a-z_]+)` \|/gm)) pairs.add(`${m[1]} ${m[2]}`);
  return [...pairs].map((p) => p.split(" ") as [string, string]);
}

function errorGaps(doc: string, codes: readonly [string, string][]): string[] {
  const table = section(doc, "### Errors") ?? "";
  return codes
    .filter(([status, code]) =>
      !new RegExp(`^\\|\\s*${status}\\s*\\|\\s*\`${code}\`\\s*\\|`, "m").test(table)
    )
    .map(([status, code]) => `the error table has no row for ${status} ${code}`);
}

// ---------------------------------------------------------------- routes, from a running API

interface ListedRoute {
  readonly method: string;
  readonly path: string;
}

function routeGaps(doc: string, routes: readonly ListedRoute[]): string[] {
  const table = section(doc, "### Routes") ?? "";
  return routes
    .filter((r) => !table.includes(`| \`${r.method} ${r.path}\``))
    .map((r) => `the route table has no row for ${r.method} ${r.path}`);
}

// ---------------------------------------------------------------- mod.ts

/** The type names mod.ts exports (`export type {…}`, `type X` in an export list, `export interface`). */
function moduleTypeNames(): string[] {
  const source = read("mod.ts");
  const names = new Set<string>();
  for (const m of source.matchAll(/^export interface (\w+)/gm)) names.add(m[1]);
  for (const m of source.matchAll(/^export type \{([^}]*)\}/gm)) {
    for (const n of m[1].split(",")) if (n.trim()) names.add(n.trim().split(/\s+as\s+/).pop()!);
  }
  for (const m of source.matchAll(/^export \{([^}]*)\}/gm)) {
    for (const n of m[1].split(",")) {
      const t = /^type\s+(.+)$/.exec(n.trim());
      if (t) names.add(t[1].split(/\s+as\s+/).pop()!);
    }
  }
  return [...names];
}

/** What the doc's export list lacks: a table row per value, a mention per type. */
function exportGaps(doc: string, values: readonly string[], types: readonly string[]): string[] {
  const list = section(doc, "### Everything `mod.ts` exports") ?? "";
  return [
    ...values.filter((n) => !new RegExp(`^\\|\\s*\`${n}\`\\s*\\|`, "m").test(list)).map((n) =>
      `the export list has no row for ${n}`
    ),
    ...types.filter((n) => !list.includes(`\`${n}\``)).map((n) =>
      `the export list does not name the type ${n}`
    ),
  ];
}

/** `doc` without its first line that contains `needle`. */
function withoutLine(doc: string, needle: string): string {
  const lines = doc.split("\n");
  const i = lines.findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, `the doc has no line with ${needle}`);
  return [...lines.slice(0, i), ...lines.slice(i + 1)].join("\n");
}

// ---------------------------------------------------------------- the tests

describe("docs/API.md", () => {
  it("has a section for every command of cli/commands.ts, naming its flags, and the global flags", async () => {
    const tables = cliTables();
    assert.ok(
      tables.commands.length >= 10,
      `parsed only ${tables.commands.length} commands from cli/commands.ts`,
    );
    assert.ok(tables.flags.includes("no-auth") && tables.globalFlags.includes("path"));
    // The parse of cli/commands.ts agrees with what the CLI itself lists.
    const help = await cliOutput(["help"]);
    assert.equal(help.code, 0);
    const list = /\nCommands:\n([\s\S]*?)\n\n/.exec(help.out);
    assert.ok(list, help.out);
    const commandsInHelp = list[1].split("\n").map((l) => /^ {2}(\S+)/.exec(l)?.[1]);
    assert.deepEqual(commandsInHelp, tables.commands.map((c) => c.name));
    assert.deepEqual(cliGaps(API_DOC, tables), []);
    // Each part of the check notices a line gone.
    assert.ok(cliGaps(withoutLine(API_DOC, "### `lattice peers"), tables).some((g) => g.includes("peers")));
    assert.ok(cliGaps(withoutLine(API_DOC, "| `--mdns`"), tables).some((g) => g.includes("--mdns")));
    assert.ok(cliGaps(withoutLine(API_DOC, "| `--token T`"), tables).some((g) => g.includes("--token")));
  });

  it("names every option that the CLI's help texts mention", async () => {
    const { commands } = cliTables();
    for (const args of [["help"], ...commands.map((c) => ["help", c.name])]) {
      const { code, out } = await cliOutput(args);
      assert.equal(code, 0, out);
      for (const [flag] of out.matchAll(/(?<![\w-])--[a-z][\w-]*/g)) {
        assert.ok(
          namesFlag(API_DOC, flag.slice(2)),
          `lattice ${args.join(" ")} mentions ${flag}; API.md does not`,
        );
      }
    }
  });

  describe("the HTTP API", () => {
    let db: lattice.OpenedDatabase;
    let api: HttpApi;
    before(async () => {
      db = await lattice.open({ storage: "memory" });
      api = await startHttpApi(db, {
        host: "127.0.0.1",
        port: 0,
        info: () => ({ peerId: null, addrs: [], space: "default", peers: [] }),
      });
    });
    after(async () => {
      await api?.close();
      await db?.close();
    });

    it("has a row for every route GET /v1 lists, with its method", async () => {
      const lists: ListedRoute[][] = [];
      for (const path of ["/v1", "/v1/"]) {
        const res = await fetch(api.url + path);
        assert.equal(res.status, 200);
        lists.push((await res.json() as { routes: ListedRoute[] }).routes);
      }
      assert.deepEqual(lists[1], lists[0], "GET /v1/ answers as GET /v1");
      const routes = lists[0];
      assert.ok(routes.length >= 10, `GET /v1 lists only ${routes.length} routes`);
      assert.deepEqual(routeGaps(API_DOC, routes), []);
      assert.deepEqual(routeGaps(withoutLine(API_DOC, "| `DELETE /v1/nodes/{soul}`"), routes), [
        "the route table has no row for DELETE /v1/nodes/{soul}",
      ]);
    });

    it("has a row for every error code of net/http.ts, with its status", () => {
      const codes = httpErrorCodes();
      const names = codes.map(([s, c]) => `${s} ${c}`);
      for (
        const known of [
          "401 unauthorized",
          "413 payload_too_large",
          "422 query_too_large",
          "507 insufficient_storage",
        ]
      ) {
        assert.ok(names.includes(known), `parsed no ${known} from net/http.ts`);
      }
      assert.deepEqual(errorGaps(API_DOC, codes), []);
      assert.deepEqual(errorGaps(withoutLine(API_DOC, "| `misdirected_request`"), codes), [
        "the error table has no row for 421 misdirected_request",
      ]);
    });
  });

  it("names every value and type that mod.ts exports", () => {
    const values = Object.keys(lattice);
    assert.ok(values.includes("open") && values.includes("connect"));
    const types = moduleTypeNames();
    assert.ok(types.includes("OpenOptions") && types.includes("NetworkOpenOptions"), types.join(" "));
    assert.deepEqual(exportGaps(API_DOC, values, types), []);
    assert.deepEqual(exportGaps(withoutLine(API_DOC, "| `DiskFullError`"), values, types), [
      "the export list has no row for DiskFullError",
    ]);
    assert.ok(
      exportGaps(withoutLine(API_DOC, "`OpenOptions`"), values, types)
        .includes("the export list does not name the type OpenOptions"),
    );
  });

  it("links the wire formats, and PROTOCOL.md names the protocol ids the code uses", () => {
    const protocol = read("docs/PROTOCOL.md");
    assert.ok(API_DOC.includes("](PROTOCOL.md)"));
    // The node's wire names, in the files of net/ that define them.
    const node = ["net/dht_records.ts", "net/space.ts", "net/libp2p_node.ts", "net/transports.ts"].map(read)
      .join("\n");
    const dht = /export const DHT_PROTOCOL = "([^"]+)"/.exec(node)?.[1];
    assert.equal(dht, "/lattice/kad/1.0.0");
    assert.match(node, /const RAW_CODEC = 0x55;/);
    assert.match(node, /"\/lattice\/1\/space\/" \+/);
    assert.match(node, /validators: \{ lattice: validateRecord\b/); // the `/lattice/` record namespace
    // The mDNS service tag: `_lattice-` and the first 16 hex digits of the topic's hash.
    assert.match(node, /lastIndexOf\("\/"\) \+ 17\);\n.*serviceTag: `_lattice-\$\{hash\}\._udp\.local`/);
    for (const doc of [protocol, API_DOC]) {
      for (
        const id of [
          dht!,
          SYNC_PROTOCOL,
          "/lattice/1/space/<hex sha256(space)>",
          "`/lattice/`",
          "0x55",
          "`_lattice-<first 16 hex digits of sha256(space)>._udp.local`",
        ]
      ) {
        assert.ok(doc.includes(id), `${doc === protocol ? "PROTOCOL" : "API"}.md does not name ${id}`);
      }
    }
  });

  it("leaves no pointer to a contract outside the repository", () => {
    const outside = ["../shared", "DESIGN" + ".md"];
    for (
      const file of [
        "README.md",
        "docs/API.md",
        "docs/ARCHITECTURE.md",
        "docs/PROTOCOL.md",
        "mod.ts",
        "cli.ts",
        "cli/commands.ts",
      ]
    ) {
      for (const s of outside) assert.ok(!read(file).includes(s), `${file} points to ${s}`);
    }
    const parts = (dir: string) =>
      readdirSync(new URL(`../net/${dir}/`, import.meta.url)).filter((f) => f.endsWith(".ts")).map((f) =>
        `${dir}/${f}`
      );
    for (
      const file of ["http.ts", "serve.ts", "token.ts", "client.ts", ...parts("http"), ...parts("client")]
    ) {
      for (const s of outside) assert.ok(!read(`net/${file}`).includes(s), `net/${file} points to ${s}`);
    }
  });
});
